package fsm

import (
	"errors"
	"fmt"
	"testing"
)

// TestCodeIsTheSameEveryTime: Code names one kind for an error alike on
// every call and every node. It walked a map, in Go's random order, and
// returned the first kind the error matched: for an error of two kinds
// each node could store a different code in a delivery's remembered
// result (DeliverResult.Rejected). Every error apply makes today has one
// kind; the order keeps it so when one does not.
func TestCodeIsTheSameEveryTime(t *testing.T) {
	two := fmt.Errorf("%w; %w", errorf(ErrNotFound, "gone"), errorf(ErrInvalid, "bad"))
	first := Code(two)
	for range 200 {
		if got := Code(two); got != first {
			t.Fatalf("Code of one error gave %q, then %q", first, got)
		}
	}
	if Code(errors.New("disk")) != "" || Code(errorf(ErrLocked, "x")) != "locked" {
		t.Fatal("Code of a plain or a one-kind error")
	}
}
