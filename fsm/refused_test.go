package fsm

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestCopyOfBodyWithoutRecordWritesNothing: a COPY of a message whose body
// has no record (left by a reference count that ran short, as a Deliver
// naming a mailbox twice once made it) is refused, and refused before its
// first write. It wrote the copies and then failed, so the batch committed
// message records in the target folder beyond its UIDNEXT, which the next
// delivery there would overwrite.
func TestCopyOfBodyWithoutRecordWritesNothing(t *testing.T) {
	a := deliveryFixture(t)
	kept, lost := bodyHash("kept"), bodyHash("lost")
	for _, h := range []string{kept, lost} {
		a.must(&Deliver{Hash: h, Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	}
	raw, _ := parseHash(lost)
	if err := a.s.view(func(r pebble.Reader) error { return r.(*pebble.DB).Delete(bodyKey(raw), pebble.NoSync) }); err != nil {
		t.Fatal(err)
	}
	r := a.apply(&Copy{Mailbox: "a@example.com", From: "INBOX", To: "Trash", UIDs: []UIDRange{{1, 2}}})
	if !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("copy of a body without a record: %+v, want ErrInvalid", r)
	}
	if f, msgs, _ := a.s.View("a@example.com", "Trash"); len(msgs) != 0 || f.UIDNext != 1 {
		t.Fatalf("refused copy left %d messages in Trash (UIDNEXT %d)", len(msgs), f.UIDNext)
	}
	if b, _ := a.s.Body(kept); b.Refs != 1 {
		t.Fatalf("refused copy moved the other body's references to %d", b.Refs)
	}
}

// TestRefusedCommandWithWritesIsReported: applyCommand reports a refused
// command that wrote before its refusal (newApplier fails the test then).
func TestRefusedCommandWithWritesIsReported(t *testing.T) {
	var got []uint64
	s, err := Open(t.TempDir(), Options{refusedWrote: func(index uint64, _ CmdType) { got = append(got, index) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := s.db.NewIndexedBatch()
	defer b.Close()
	for i, c := range []Command{writesThenRefuses{write: false}, writesThenRefuses{write: true}} {
		if r := s.applyCommand(c, &txn{b: b, index: uint64(i + 1)}); !errors.Is(r.Err, ErrInvalid) {
			t.Fatalf("result %+v", r)
		}
	}
	if len(got) != 1 || got[0] != 2 {
		t.Fatalf("reported entries %v, want [2]", got)
	}
}

// writesThenRefuses is a command that breaks the rule applyCommand checks.
type writesThenRefuses struct{ write bool }

func (writesThenRefuses) Type() CmdType { return 0 }

func (c writesThenRefuses) apply(tx *txn) (any, error) {
	if c.write {
		if err := tx.b.Set([]byte("k"), nil, nil); err != nil {
			return nil, err
		}
	}
	return nil, errorf(ErrInvalid, "refused")
}
