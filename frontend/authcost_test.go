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
	if got := c.slowest(t0.Add(checkCostWindow + time.Second)); got != 0 {
		t.Errorf("after the window: %v, want it forgotten", got)
	}
	c.note(40*time.Millisecond, t0.Add(checkCostWindow+2*time.Second))
	if got := c.slowest(t0.Add(checkCostWindow + 3*time.Second)); got != 40*time.Millisecond {
		t.Errorf("a new window starts from the next check: %v", got)
	}
	c.note(time.Minute, t0.Add(checkCostWindow+4*time.Second))
	if got := c.slowest(t0.Add(checkCostWindow + 5*time.Second)); got != maxCheckCost {
		t.Errorf("a pathological check: %v, want the cap %v", got, maxCheckCost)
	}
}
