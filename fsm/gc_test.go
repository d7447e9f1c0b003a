package fsm

import (
	"errors"
	"slices"
	"testing"
)

func TestBodyCollectionAndRevival(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("gc me")
	deliver := func(replicas ...string) {
		a.must(&Deliver{Hash: h, Size: 5, Replicas: replicas, Mailboxes: []string{"a@example.com"}})
	}
	zero := func() []string {
		z, err := a.s.ZeroRefBodies("", 10)
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	deliver("n1", "n2")
	if z := zero(); len(z) != 0 {
		t.Fatalf("referenced body listed for collection: %v", z)
	}
	a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX"})
	if z := zero(); !slices.Equal(z, []string{h}) {
		t.Fatalf("zero-reference list %v", z)
	}
	first := a.apply(&BodyCollect{Hash: h}).Value.(CollectResult)
	if first.Collect == 0 || !slices.Equal(first.Replicas, []string{"n1", "n2"}) {
		t.Fatalf("collect: %+v", first)
	}
	// The same content arrives again while its old copies are being
	// deleted: the record is revived with the new replicas only.
	deliver("n3", "n2")
	b, _ := a.s.Body(h)
	if b.Refs != 1 || b.Collecting != 0 || !slices.Equal(b.Replicas, []string{"n2", "n3"}) {
		t.Fatalf("revived body %+v", b)
	}
	if gone := a.apply(&BodyForget{Hash: h, Collect: first.Collect}).Value; gone != false {
		t.Fatal("forgot a revived body")
	}
	if r := a.apply(&BodyCollect{Hash: h}).Value.(CollectResult); r.Collect != 0 {
		t.Fatalf("collect of a referenced body: %+v", r)
	}
	a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX"})
	second := a.apply(&BodyCollect{Hash: h}).Value.(CollectResult)
	if again := a.apply(&BodyCollect{Hash: h}).Value.(CollectResult); again.Collect != second.Collect {
		t.Fatalf("a second collect moved the tombstone: %+v then %+v", second, again)
	}
	if gone := a.apply(&BodyForget{Hash: h, Collect: second.Collect}).Value; gone != true {
		t.Fatal("forget under the current tombstone failed")
	}
	if _, err := a.s.Body(h); !errors.Is(err, ErrNotFound) {
		t.Fatalf("record after forget: %v", err)
	}
	if z := zero(); len(z) != 0 {
		t.Fatalf("zero-reference list after forget: %v", z)
	}
}
