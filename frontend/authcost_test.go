package frontend

import (
	"testing"
	"time"
)

func TestCheckCostWindowAndCap(t *testing.T) {
	var c checkCost
	t0 := time.Unix(1_700_000_000, 0)
	if got := c.slowest(t0); got != 0 {
		t.Fatalf("nothing noted: %v", got)
	}
	c.note(300*time.Millisecond, t0)
	c.note(50*time.Millisecond, t0.Add(time.Minute))
	if got := c.slowest(t0.Add(2 * time.Minute)); got != 300*time.Millisecond {
		t.Errorf("the slowest within the window: %v", got)
	}
	// A check is kept for the window and at most one span more.
	span := checkCostWindow / checkCostSpans
	if got := c.slowest(t0.Add(checkCostWindow + span + time.Second)); got != 50*time.Millisecond {
		t.Errorf("after the window of the first check: %v, want the second, 50ms", got)
	}
	if got := c.slowest(t0.Add(checkCostWindow + 2*span + time.Second)); got != 0 {
		t.Errorf("after the window of both: %v, want them forgotten", got)
	}
	c.note(40*time.Millisecond, t0.Add(checkCostWindow+2*span+2*time.Second))
	if got := c.slowest(t0.Add(checkCostWindow + 2*span + 3*time.Second)); got != 40*time.Millisecond {
		t.Errorf("a check after a quiet window: %v", got)
	}
	c.note(time.Minute, t0.Add(checkCostWindow+2*span+4*time.Second))
	if got := c.slowest(t0.Add(checkCostWindow + 2*span + 5*time.Second)); got != maxCheckCost {
		t.Errorf("a pathological check: %v, want the cap %v", got, maxCheckCost)
	}
}

// A slow check stays the floor for the whole window after it, even when
// a slower one noted before it has left the window: otherwise the floor
// drops to nothing ten minutes after its peak while slow hashes are
// still being checked, and the next probe shows them again.
func TestCheckCostKeepsTheSlowestOfTheWindow(t *testing.T) {
	var c checkCost
	t0 := time.Unix(1_700_000_000, 0)
	c.note(1300*time.Millisecond, t0)
	c.note(1200*time.Millisecond, t0.Add(5*time.Minute))
	c.note(10*time.Millisecond, t0.Add(9*time.Minute))
	if got := c.slowest(t0.Add(checkCostWindow + 90*time.Second)); got != 1200*time.Millisecond {
		t.Errorf("5 min after a 1.2 s check, the 1.3 s one gone: %v, want 1.2s", got)
	}
	if got := c.slowest(t0.Add(5*time.Minute + 2*checkCostWindow)); got != 0 {
		t.Errorf("long after every check: %v, want 0", got)
	}
}
