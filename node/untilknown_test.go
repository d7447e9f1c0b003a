package node

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"powermail/fsm"
)

// untilKnown proposes again while a commit's outcome is unknown, and
// stops at once at the state machine's own answer.
func TestUntilKnown(t *testing.T) {
	n := &Node{log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	calls := 0
	err := n.untilKnown(ctx, "test", "x", func(context.Context) error {
		if calls++; calls < 3 {
			return ErrIndeterminate
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("after two unknown outcomes: %v in %d calls, want success in 3", err, calls)
	}
	calls = 0
	invalid := &fsm.Error{Kind: fsm.ErrInvalid, Msg: "no"}
	err = n.untilKnown(ctx, "test", "x", func(context.Context) error { calls++; return invalid })
	if !errors.Is(err, fsm.ErrInvalid) || calls != 1 {
		t.Fatalf("the state machine's refusal: %v in %d calls, want it at once", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	calls = 0
	err = n.untilKnown(cctx, "test", "x", func(context.Context) error { calls++; cancel(); return ErrNoLeader })
	if !errors.Is(err, ErrNoLeader) || calls != 1 {
		t.Fatalf("a cancelled wait: %v in %d calls, want the last error after one", err, calls)
	}
}
