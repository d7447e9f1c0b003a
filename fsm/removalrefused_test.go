package fsm

import "testing"

// From command encoding 14 a clear that names no removal ends only the
// hold of no known owner (a mark set below 12, or by an update naming
// none): the holds of removals under way stay, and the mark with them,
// so that a removal refused at its end (a forward now keeps copies)
// cannot let in mail that another removal, still emptying the mailbox,
// then takes away. The mark goes when its last hold is released.
func TestRemovalHoldsClearWithoutRemoverFromEncoding14(t *testing.T) {
	a := removingFixture(t)
	a.raiseTo(EncodingJSON11)
	a.hold("", true) // no known owner
	a.raiseTo(EncodingJSON14)
	a.hold("first", true)
	a.hold("second", true)
	if n := holds(t, a); n != 3 {
		t.Fatalf("%d holds, want 3", n)
	}
	if r := a.hold("", false); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := holds(t, a); n != 2 || a.takesMail(t) {
		t.Fatalf("a clear naming no removal: %d holds, or mail taken; want the two removals' holds kept", n)
	}
	a.hold("first", false) // refused: its own hold
	if n := holds(t, a); n != 1 || a.takesMail(t) {
		t.Fatalf("the first removal refused while the second runs: %d holds, or mail taken", n)
	}
	a.hold("", false)
	if n := holds(t, a); n != 1 || a.takesMail(t) {
		t.Fatalf("a second clear naming no removal: %d holds, or mail taken", n)
	}
	a.hold("second", false)
	if n := holds(t, a); n != 0 || !a.takesMail(t) {
		t.Fatalf("the last hold released: %d holds, or mail refused", n)
	}
	if stray := holdKeys(t, a); len(stray) != 0 {
		t.Fatalf("holds left: %q", stray)
	}
}

// Below 14 a clear that names no removal clears the whole mark, as at
// 12 and 13: the holds of removals under way go with it.
func TestRemovalHoldsClearWithoutRemoverGateBelow14(t *testing.T) {
	a := removingFixture(t)
	a.raiseTo(EncodingJSON13)
	a.hold("first", true)
	a.hold("second", true)
	if r := a.hold("", false); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := holds(t, a); n != 0 || !a.takesMail(t) {
		t.Fatalf("at 13 a clear naming no removal: %d holds, or mail refused; want the whole mark cleared, as before", n)
	}
	if stray := holdKeys(t, a); len(stray) != 0 {
		t.Fatalf("holds left: %q", stray)
	}
}
