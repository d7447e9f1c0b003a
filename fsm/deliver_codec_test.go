package fsm

import (
	"reflect"
	"testing"
)

func TestDeliverCodec(t *testing.T) {
	checkCodec(t, Deliver{Hash: bodyHash("a"), Replicas: []string{"n1"}, Mailboxes: []string{"a@example.com"}})
	checkCodec(t, Deliver{ID: "0123456789abcdef0123456789abcdef", Hash: bodyHash("b"), Size: 50 << 20,
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
