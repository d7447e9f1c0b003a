package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

func bodyHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func deliveryFixture(t testing.TB) *applier {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "small@example.com", QuotaBytes: 100}}})
	for _, id := range []string{"n1", "n2", "n3"} {
		a.must(&MemberSet{Member{ID: id, ClusterAddr: id + ":7000"}})
	}
	return a
}

// reopenableFixture is a state in dir with a@example.com and members n1
// and n2, which the test closes itself (it may reopen dir).
func reopenableFixture(t *testing.T, dir string) *applier {
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: s}
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}}})
	a.must(&MemberSet{Member{ID: "n1", ClusterAddr: "n1:7000"}})
	a.must(&MemberSet{Member{ID: "n2", ClusterAddr: "n2:7000"}})
	return a
}

func TestDeliverAssignsUIDsAndCountsReferences(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("hello")
	var last DeliverResult
	for i := 0; i < 3; i++ {
		r := a.apply(&Deliver{Hash: h, Size: 60, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com", "b@example.com", "small@example.com"}, InternalDate: 1000})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		last = r.Value.(DeliverResult)
	}
	if last.UIDs["a@example.com"] != 3 || last.UIDs["b@example.com"] != 3 {
		t.Fatalf("UIDs after three deliveries: %+v", last)
	}
	// Quota is checked at RCPT, not at commit: an accepted message is
	// never dropped, so small@ overshoots its 100-byte quota.
	if len(last.Rejected) != 0 || last.UIDs["small@example.com"] != 3 {
		t.Fatalf("quota at commit: %+v", last)
	}
	b, err := a.s.Body(h)
	if err != nil || b.Refs != 9 || fmt.Sprint(b.Replicas) != "[n1 n2]" {
		t.Fatalf("body record %+v %v", b, err)
	}
	msgs, err := a.s.Messages("a@example.com", "INBOX", 1, 0)
	if err != nil || len(msgs) != 2 || msgs[0].UID != 2 || msgs[1].Hash != h {
		t.Fatalf("messages after uid 1: %+v %v", msgs, err)
	}
	mb, _ := a.s.Mailbox("a@example.com")
	if mb.Messages != 3 || mb.UsedBytes != 180 {
		t.Fatalf("mailbox usage %+v", mb)
	}
	// Same body delivered again through another replica set merges them.
	a.must(&Deliver{Hash: h, Size: 60, Replicas: []string{"n2", "n3"}, Mailboxes: []string{"b@example.com"}})
	if b, _ := a.s.Body(h); fmt.Sprint(b.Replicas) != "[n1 n2 n3]" || b.Refs != 10 {
		t.Fatalf("merged body %+v", b)
	}
	// Removing a mailbox releases its references.
	a.must(&MailboxRemove{Address: "b@example.com"})
	if b, _ := a.s.Body(h); b.Refs != 6 {
		t.Fatalf("refs after removing b: %+v", b)
	}
}

func TestDeliverValidatesReplicas(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("x")
	cases := []struct {
		name string
		cmd  *Deliver
		want error
	}{
		{"below write quorum", &Deliver{Hash: h, Replicas: []string{"n1"}, Mailboxes: []string{"a@example.com"}}, ErrInvalid},
		{"duplicate replica", &Deliver{Hash: h, Replicas: []string{"n1", "n1"}, Mailboxes: []string{"a@example.com"}}, ErrInvalid},
		{"unknown node", &Deliver{Hash: h, Replicas: []string{"n1", "n9"}, Mailboxes: []string{"a@example.com"}}, ErrInvalid},
		{"bad hash", &Deliver{Hash: "abc", Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}}, ErrInvalid},
		{"no mailboxes", &Deliver{Hash: h, Replicas: []string{"n1", "n2"}}, ErrInvalid},
	}
	for _, tc := range cases {
		if r := a.apply(tc.cmd); !errors.Is(r.Err, tc.want) {
			t.Errorf("%s: %v", tc.name, r.Err)
		}
	}
	r := a.apply(&Deliver{Hash: h, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"ghost@example.com"}})
	if r.Err != nil || r.Value.(DeliverResult).Rejected["ghost@example.com"] != "not_found" {
		t.Fatalf("unknown mailbox: %+v", r)
	}
	if _, err := a.s.Body(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a delivery that reached nobody must not reference the body: %v", err)
	}
}

func TestDeliverIsIdempotentByID(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("retried")
	cmd := &Deliver{ID: "attempt-1", Hash: h, Size: 7, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}}
	first := a.apply(cmd)
	again := a.apply(cmd) // the proposer lost the answer and retried
	if first.Err != nil || again.Err != nil {
		t.Fatal(first.Err, again.Err)
	}
	if fmt.Sprint(first.Value) != fmt.Sprint(again.Value) {
		t.Fatalf("retry answered %v, first %v", again.Value, first.Value)
	}
	msgs, _ := a.s.Messages("a@example.com", "INBOX", 0, 0)
	if b, _ := a.s.Body(h); len(msgs) != 1 || b.Refs != 1 {
		t.Fatalf("retry delivered again: %d messages, %+v", len(msgs), b)
	}
	// Past the window the record is gone: the same ID delivers anew.
	a.index += dedupeWindow + 10
	a.must(&Deliver{ID: "attempt-2", Hash: h, Size: 7, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"b@example.com"}})
	if _, ok, _ := seenDelivery(&txn{b: a.s.db.NewIndexedBatch()}, "attempt-1"); ok {
		t.Fatal("expired record still there")
	}
	if a.s.ids.mayHave("attempt-1") || !a.s.ids.mayHave("attempt-2") {
		t.Fatal("the ID set does not follow expiry")
	}
	a.must(cmd)
	if msgs, _ := a.s.Messages("a@example.com", "INBOX", 0, 0); len(msgs) != 2 {
		t.Fatalf("after expiry: %d messages", len(msgs))
	}
}

// The in-memory set of delivery IDs is rebuilt from the store, so a retry
// is still recognised after a restart or a snapshot install.
func TestDeliverIsIdempotentAfterReopenAndRestore(t *testing.T) {
	dir := t.TempDir()
	a := reopenableFixture(t, dir)
	s := a.s
	cmd := &Deliver{ID: "once", Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}}
	a.must(cmd)
	snap := dump(t, s)
	s.Close()

	count := func(s *State) int {
		msgs, err := s.Messages("a@example.com", "INBOX", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}
	var err error
	if a.s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer a.s.Close()
	a.must(cmd)
	if n := count(a.s); n != 1 {
		t.Fatalf("retry after reopen: %d messages", n)
	}

	b := newApplier(t)
	if err := b.s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	b.index = b.s.Applied()
	b.must(cmd)
	if n := count(b.s); n != 1 {
		t.Fatalf("retry after restore: %d messages", n)
	}
}

// TestDeliverCountsAReferencePerMessage: a Deliver that lists a mailbox
// twice (in one spelling or two) stores a message each time, and each
// message holds a body reference. With one reference per distinct
// address, expunging one copy let GC collect the body the other shows.
func TestDeliverCountsAReferencePerMessage(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("listed twice")
	a.must(&Deliver{Hash: h, Size: 10, Replicas: []string{"n1", "n2"},
		Mailboxes: []string{"a@example.com", "A@Example.com", "a@example.com", "b@example.com"}})
	_, msgs, err := a.s.View("a@example.com", "INBOX")
	if err != nil || len(msgs) != 3 {
		t.Fatalf("a@ has %d messages (%v), want 3", len(msgs), err)
	}
	if b, _ := a.s.Body(h); b.Refs != 4 {
		t.Fatalf("4 messages stored, body refs %d", b.Refs)
	}
	a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{1, 2}}})
	a.must(&MailboxRemove{Address: "b@example.com"})
	if col := a.apply(&BodyCollect{Hash: h}).Value.(CollectResult); col.Collect != 0 {
		t.Fatalf("body collected at %d while a@ UID 3 still references it", col.Collect)
	}
	a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX"})
	if b, _ := a.s.Body(h); b.Refs != 0 {
		t.Fatalf("every message gone, body refs %d", b.Refs)
	}
}
