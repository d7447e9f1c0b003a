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

// The placement mark moves with every entry that may leave a referenced
// body off R listed replicas, and with nothing that leaves bodies on R:
// repair trusts an unmoved mark to skip its scan.
func TestPlacementMarkMovesOffR(t *testing.T) {
	a := deliveryFixture(t) // R = 2, members n1-n3
	mark := func() uint64 {
		t.Helper()
		m, err := a.s.PlacementMark()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	steps := []struct {
		name  string
		cmd   Command
		moves bool
	}{
		{"settings other than R", &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 1}}, false},
		{"delivery on R", &Deliver{Hash: bodyHash("a"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}}, false},
		{"delivery short of R", &Deliver{Hash: bodyHash("b"), Size: 10, Replicas: []string{"n1"}, Mailboxes: []string{"a@example.com"}}, true},
		{"repair brings it to R", &BodyPlace{Hash: bodyHash("b"), Add: []string{"n3"}}, false},
		{"a missing copy unlisted", &BodyPlace{Hash: bodyHash("a"), Remove: []string{"n2"}}, true},
		{"an extra copy listed", &BodyPlace{Hash: bodyHash("b"), Add: []string{"n2"}}, true},
		{"the extra copy trimmed", &BodyPlace{Hash: bodyHash("b"), Remove: []string{"n2"}}, false},
		{"a body in one mailbox", &Deliver{Hash: bodyHash("c"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"b@example.com"}}, false},
		{"the mailbox removed: nobody references it", &MailboxRemove{Address: "b@example.com"}, false},
		{"the same content delivered again", &Deliver{Hash: bodyHash("c"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}}, true},
		{"the same content delivered elsewhere", &Deliver{Hash: bodyHash("b"), Size: 10, Replicas: []string{"n2", "n3"}, Mailboxes: []string{"a@example.com"}}, true},
		{"R raised", &SettingsSet{Settings: Settings{Replicas: 3, WriteQuorum: 1}}, true},
		{"a member added", &MemberSet{Member{ID: "n4", ClusterAddr: "n4:7000"}}, true},
		{"a member removed", &MemberRemove{ID: "n4"}, true},
	}
	for _, s := range steps {
		before := mark()
		a.must(s.cmd)
		after := mark()
		if moved := after != before; moved != s.moves {
			t.Fatalf("%s: mark %d -> %d, want moved=%v", s.name, before, after, s.moves)
		}
		if s.moves && after != a.index {
			t.Fatalf("%s: mark %d, want the entry's index %d", s.name, after, a.index)
		}
	}
}
