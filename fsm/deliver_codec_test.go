package fsm

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestDeliverCodec round-trips the binary payload. A Deliver has no JSON
// fallback in it: the entry's encoding byte says which form follows.
func TestDeliverCodec(t *testing.T) {
	checkBinaryCodec(t, Deliver{Hash: bodyHash("a"), Replicas: []string{"n1"}, Mailboxes: []string{"a@example.com"}})
	checkBinaryCodec(t, Deliver{ID: "0123456789abcdef0123456789abcdef", Hash: bodyHash("b"), Size: 50 << 20,
		Replicas: []string{"n1", "n3"}, Mailboxes: []string{"a@example.com", "b@example.com"}, InternalDate: -1,
		Flags: []string{`\Seen`, "$Label"}, Folder: "Archiv/ü",
		Queue: &QueuePart{From: "x@y.z", Recipients: []string{"r1@far.away", "r2@far.away"}, NextAttempt: 1764374400000}})
}

// TestCommandEncodings checks that a Deliver reads the same from either
// encoding, that commands without a binary codec stay JSON, and that an
// entry this release cannot read stops the replica.
func TestCommandEncodings(t *testing.T) {
	r := newRegistry()
	c := &Deliver{ID: "id1", Hash: bodyHash("c"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"},
		InternalDate: 5, Queue: &QueuePart{From: "f@x.y", Recipients: []string{"t@far.away"}}}
	for enc, want := range map[int]byte{0: EncodingJSON, EncodingJSON: EncodingJSON, EncodingBinary: EncodingBinary} {
		data, err := EncodeAs(c, enc)
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != byte(CmdDeliver) || data[1] != want {
			t.Fatalf("EncodeAs(Deliver, %d) starts %v, want encoding %d", enc, data[:2], want)
		}
		if got := r.decode(1, data); !reflect.DeepEqual(got, c) {
			t.Fatalf("encoding %d decodes to %+v", want, got)
		}
	}
	data, _ := EncodeAs(&DomainAdd{Name: "example.com"}, EncodingBinary)
	if data[1] != EncodingJSON {
		t.Fatalf("a command without a binary codec was written with encoding %d", data[1])
	}
	for _, bad := range [][]byte{
		append([]byte{byte(CmdDomainAdd), EncodingBinary}, data[2:]...),   // no binary codec
		append([]byte{byte(CmdDeliver), NewestEncoding + 1}, data[2:]...), // a later release's
		{byte(CmdDeliver), EncodingBinary, 0xff},                          // truncated
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("entry %v decoded", bad)
				}
			}()
			r.decode(1, bad)
		}()
	}
}

// TestDeliverPayloadStartingWithBraceIsBinary: the binary payload of a
// Deliver whose ID is 123 bytes long starts with the byte 123, '{'. It
// was taken for JSON, failed to decode and stopped every replica.
func TestDeliverPayloadStartingWithBraceIsBinary(t *testing.T) {
	a := deliveryFixture(t)
	c := &Deliver{ID: strings.Repeat("x", 123), Hash: bodyHash("brace"), Size: 1, Replicas: []string{"n1", "n2"},
		Mailboxes: []string{"a@example.com"}}
	data, err := EncodeAs(c, EncodingBinary)
	if err != nil {
		t.Fatal(err)
	}
	if data[1] != EncodingBinary || data[2] != '{' {
		t.Fatalf("encoding %d, payload starts %q: not the case under test", data[1], data[2])
	}
	if err := a.s.CheckCommand(data); err != nil {
		t.Fatalf("CheckCommand: %v", err)
	}
	if got := a.s.reg.decode(1, data); !reflect.DeepEqual(got, c) {
		t.Fatalf("decoded %+v", got)
	}
	res := a.applyAs(c, EncodingBinary)
	if res.Err != nil || res.Value.(DeliverResult).UIDs["a@example.com"] != 1 {
		t.Fatalf("apply: %+v", res)
	}
}

// TestCheckCommand: what apply would stop on, a proposer learns from
// CheckCommand as ErrInvalid, without a panic.
func TestCheckCommand(t *testing.T) {
	s := newApplier(t).s
	c := &Deliver{ID: "id1", Hash: bodyHash("c"), Size: 10, Replicas: []string{"n1"}, Mailboxes: []string{"a@example.com"}}
	bin, _ := EncodeAs(c, EncodingBinary)
	js, _ := EncodeAs(c, EncodingJSON)
	dom, _ := Encode(&DomainAdd{Name: "example.com"})
	for _, good := range [][]byte{bin, js, dom} {
		if err := s.CheckCommand(good); err != nil {
			t.Errorf("CheckCommand(%q): %v", good, err)
		}
	}
	for _, bad := range [][]byte{
		nil, {byte(CmdDeliver)},
		{0xEE, EncodingJSON, '{', '}'},                                   // unknown type
		append([]byte{byte(CmdDeliver), NewestEncoding + 1}, bin[2:]...), // a later release's encoding
		append([]byte{byte(CmdDomainAdd), EncodingBinary}, dom[2:]...),   // no binary codec
		append([]byte{byte(CmdDeliver), EncodingBinary}, js[2:]...),      // JSON under the binary byte
		bin[:len(bin)-1], // truncated
		{byte(CmdDomainAdd), EncodingJSON, 'x'},
	} {
		err := s.CheckCommand(bad)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("CheckCommand(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}
