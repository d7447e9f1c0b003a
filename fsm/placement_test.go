package fsm

import (
	"fmt"
	"testing"
)

// A conditional placement change applies only on the listing it was
// decided on: a stale trim must not take a second copy away.
func TestBodyPlaceIfListedOn(t *testing.T) {
	a := deliveryFixture(t)
	h := bodyHash("placed")
	a.must(&Deliver{Hash: h, Size: 10, Replicas: []string{"n1", "n2", "n3"}, Mailboxes: []string{"a@example.com"}})
	listed := func() string { b, _ := a.s.Body(h); return fmt.Sprint(b.Replicas) }

	// Two trims decided on the same three-copy listing: the first
	// applies, the second finds the listing changed and is not taken.
	seen := []string{"n3", "n1", "n2"} // any order
	if r := a.apply(&BodyPlace{Hash: h, Remove: []string{"n1"}, If: seen}); r.Err != nil || r.Value != true {
		t.Fatalf("first trim: %+v", r)
	}
	if r := a.apply(&BodyPlace{Hash: h, Remove: []string{"n2"}, If: seen}); r.Err != nil || r.Value != false {
		t.Fatalf("stale trim: %+v, want not taken", r)
	}
	if got := listed(); got != "[n2 n3]" {
		t.Fatalf("listed on %s after a stale trim, want [n2 n3]", got)
	}
	// A move decided on the current listing applies; no condition means
	// whatever the listing.
	if r := a.apply(&BodyPlace{Hash: h, Add: []string{"n1"}, Remove: []string{"n2"}, If: []string{"n2", "n3"}}); r.Value != true {
		t.Fatalf("current move: %+v", r)
	}
	if r := a.apply(&BodyPlace{Hash: h, Add: []string{"n2"}}); r.Value != true || listed() != "[n1 n2 n3]" {
		t.Fatalf("unconditional add: %+v, listed on %s", r, listed())
	}
}
