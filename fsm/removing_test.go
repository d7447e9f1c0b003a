package fsm

import (
	"errors"
	"testing"
)

// removingFixture is deliveryFixture with a forward team@ -> a@, b@ and
// one message in a@'s INBOX.
func removingFixture(t *testing.T) *applier {
	a := deliveryFixture(t)
	a.must(&ForwardAdd{Address: "team@example.com", Targets: []string{"a@example.com", "b@example.com"}})
	a.must(&Deliver{Hash: bodyHash("first"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	return a
}

// applyRaw applies data as the next entry.
func (a *applier) applyRaw(data []byte) Result {
	a.t.Helper()
	a.index++
	return a.s.ApplyBatch([]Entry{{Index: a.index, Data: data}})[0]
}

func markRemoving(on bool) *MailboxUpdate {
	return &MailboxUpdate{Address: "a@example.com", Removing: &on}
}

// The mark of a mailbox being removed needs command encoding 10: a
// proposer cannot write it below, and an entry below 10 that carries the
// field anyway is applied as a release before 10 applies it, the field
// dropped, so that mail keeps arriving as before.
func TestRemovingMarkNeedsEncoding10(t *testing.T) {
	a := removingFixture(t)
	if _, err := EncodeAs(markRemoving(true), EncodingJSON9); !errors.Is(err, ErrEncoding) {
		t.Fatalf("mark encoded at 9: %v, want ErrEncoding", err)
	}
	for _, enc := range []byte{EncodingJSON, EncodingJSON4, EncodingJSON9} {
		data := append([]byte{byte(CmdMailboxUpdate), enc}, `{"address":"a@example.com","removing":true}`...)
		if r := a.applyRaw(data); r.Err != nil {
			t.Fatalf("update in encoding %d: %v", enc, r.Err)
		}
		if mb, err := a.s.Mailbox("a@example.com"); err != nil || mb.Removing {
			t.Fatalf("encoding %d: the mark was taken (%+v, %v)", enc, mb, err)
		}
		r := a.apply(&Deliver{Hash: bodyHash("old"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
		if res := r.Value.(DeliverResult); r.Err != nil || len(res.Rejected) != 0 {
			t.Fatalf("delivery after an encoding %d update: %+v, %v", enc, res, r.Err)
		}
	}
}

// While a mailbox is marked as being removed, Deliver refuses it (and
// delivers to the others it lists), an APPEND and a COPY into it are
// refused, and Resolve names it, also through a forward. Expunges, which
// empty it, still go through; clearing the mark makes it take mail again,
// and a marked mailbox is removed as any other.
func TestRemovingMarkRefusesMail(t *testing.T) {
	a := removingFixture(t)
	if r := a.applyAs(markRemoving(true), NewestEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	if mb, err := a.s.Mailbox("a@example.com"); err != nil || !mb.Removing {
		t.Fatalf("mark not set: %+v, %v", mb, err)
	}
	r := a.apply(&Deliver{Hash: bodyHash("late"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com", "b@example.com"}})
	res := r.Value.(DeliverResult)
	if r.Err != nil || res.Rejected["a@example.com"] != "being_removed" || res.UIDs["b@example.com"] == 0 {
		t.Fatalf("delivery to a marked and an unmarked mailbox: %+v, %v", res, r.Err)
	}
	if err := FromCode(res.Rejected["a@example.com"], res.Messages["a@example.com"]); !errors.Is(err, ErrBeingRemoved) {
		t.Fatalf("rejection code does not rebuild ErrBeingRemoved: %v", err)
	}
	if b, err := a.s.Body(bodyHash("late")); err != nil || b.Refs != 1 {
		t.Fatalf("body of the partly refused delivery: %d references, want 1 (%v)", b.Refs, err)
	}
	r = a.apply(&Deliver{Hash: bodyHash("append"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}, Folder: "INBOX"})
	if res := r.Value.(DeliverResult); r.Err != nil || res.Rejected["a@example.com"] != "being_removed" {
		t.Fatalf("append to a marked mailbox: %+v, %v", res, r.Err)
	}
	for _, move := range []bool{false, true} {
		r = a.apply(&Copy{Mailbox: "a@example.com", From: "INBOX", To: "Trash", UIDs: []UIDRange{{1, 1}}, Move: move})
		if !errors.Is(r.Err, ErrBeingRemoved) {
			t.Fatalf("copy (move %v) in a marked mailbox: %v", move, r.Err)
		}
	}
	for _, addr := range []string{"a@example.com", "a+tag@example.com", "team@example.com"} {
		got, err := a.s.Resolve(addr)
		if err != nil || len(got.Removing) != 1 || got.Removing[0] != "a@example.com" {
			t.Fatalf("resolve %s: %+v, %v", addr, got, err)
		}
	}
	if got, err := a.s.Resolve("b@example.com"); err != nil || len(got.Removing) != 0 {
		t.Fatalf("resolve b: %+v, %v", got, err)
	}
	a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{1, 1}}})

	if r := a.applyAs(markRemoving(false), NewestEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	r = a.apply(&Deliver{Hash: bodyHash("after"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	if res := r.Value.(DeliverResult); r.Err != nil || len(res.Rejected) != 0 {
		t.Fatalf("delivery after the mark was cleared: %+v, %v", res, r.Err)
	}
	if got, _ := a.s.Resolve("team@example.com"); len(got.Removing) != 0 {
		t.Fatalf("resolve after the mark was cleared: %+v", got)
	}

	if r := a.applyAs(markRemoving(true), NewestEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	a.must(&MailboxRemove{Address: "a@example.com"})
	checkRemoved(t, a.s, "a@example.com")
}

// The mark survives the mailbox record's binary codec, and records
// without it decode as before.
func TestMailboxCodecKeepsRemoving(t *testing.T) {
	for _, in := range []Mailbox{
		{Address: "a@example.com", Removing: true, Disabled: true, HasForward: true, Messages: 3},
		{Address: "a@example.com", HasForward: true},
	} {
		b, err := in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var out Mailbox
		if err := out.UnmarshalBinary(b); err != nil || out != in {
			t.Fatalf("round trip of %+v gave %+v, %v", in, out, err)
		}
	}
}
