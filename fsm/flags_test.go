package fsm

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func keywords(from, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("k%02d", from+i))
	}
	return out
}

// TestFlagsAddCountsTheUnion: +FLAGS of keywords a message already has
// leaves its flags as they are; the limit applies to the union without
// duplicates. It used to count before removing duplicates and, over
// MaxFlags, wipe every flag of the message, \Seen and \Deleted too.
func TestFlagsAddCountsTheUnion(t *testing.T) {
	a := deliveryFixture(t)
	have := append([]string{`\Seen`}, keywords(0, 33)...)
	a.must(&Deliver{Hash: bodyHash("f"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}, Flags: have})
	r := a.apply(&FlagsStore{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{1, 1}}, Op: FlagsAdd, Flags: keywords(0, 33)})
	if r.Err != nil || len(r.Value.([]Message)) != 0 {
		t.Fatalf("re-adding present keywords: %+v", r)
	}
	_, msgs, _ := a.s.View("a@example.com", "INBOX")
	if len(msgs[0].Flags) != 34 || !slices.Contains(msgs[0].Flags, `\Seen`) {
		t.Fatalf("flags after re-adding present keywords: %v", msgs[0].Flags)
	}
	a.must(&FlagsStore{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{1, 1}}, Op: FlagsAdd, Flags: keywords(20, 43)})
	if _, msgs, _ = a.s.View("a@example.com", "INBOX"); len(msgs[0].Flags) != MaxFlags {
		t.Fatalf("a union of exactly %d flags: %d", MaxFlags, len(msgs[0].Flags))
	}
}

// TestFlagsAddOverLimitWritesNothing: a STORE that would leave any of its
// messages with more than MaxFlags flags is refused before it writes, so
// no message of the range changes (RFC 9051 section 6.4.6: STORE fails
// with NO).
func TestFlagsAddOverLimitWritesNothing(t *testing.T) {
	a := deliveryFixture(t)
	full := append([]string{`\Seen`, `\Deleted`}, keywords(0, 60)...)
	a.must(&Deliver{Hash: bodyHash("few"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	a.must(&Deliver{Hash: bodyHash("full"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}, Flags: full})
	before, msgsBefore, _ := a.s.View("a@example.com", "INBOX")
	r := a.apply(&FlagsStore{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{1, 2}}, Op: FlagsAdd, Flags: keywords(60, 3)})
	if !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("+FLAGS to %d flags: %+v, want ErrInvalid", len(full)+3, r)
	}
	after, msgs, _ := a.s.View("a@example.com", "INBOX")
	if !slices.EqualFunc(msgs, msgsBefore, func(x, y Message) bool { return slices.Equal(x.Flags, y.Flags) }) ||
		after.Unseen != before.Unseen || after.Deleted != before.Deleted || after.ModSeq != before.ModSeq {
		t.Fatalf("refused STORE changed the folder: %+v %v, was %+v %v", after, msgs, before, msgsBefore)
	}
}
