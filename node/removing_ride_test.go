package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
)

// hideOnce is an onApplied hook that hides, once for each of its
// kinds, the outcome of a committed entry of the removal of a: its
// mark, an emptying piece, the mailbox's removal. The entry took; the
// remover is told ErrIndeterminate, as when a leader change cuts off
// the answer. cleared is set if a clear of the mark is applied.
type hideOnce struct {
	a       string
	mu      sync.Mutex
	hidden  map[string]bool
	cleared atomic.Bool
}

func (h *hideOnce) hook(cmd fsm.Command, err error) error {
	if err != nil {
		return err
	}
	kind := ""
	switch c := cmd.(type) {
	case *fsm.MailboxUpdate:
		if c.Address != h.a || c.Removing == nil {
			return nil
		}
		if !*c.Removing {
			h.cleared.Store(true)
			return nil
		}
		kind = "mark"
	case *fsm.Expunge:
		if c.Mailbox == h.a {
			kind = "piece"
		}
	case *fsm.MailboxRemove:
		if c.Address == h.a {
			kind = "remove"
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if kind == "" || h.hidden[kind] {
		return nil
	}
	h.hidden[kind] = true
	return fmt.Errorf("%w: test: the answer to a committed %T was lost", ErrIndeterminate, cmd)
}

// A leader change during `mailbox rm` can hide whether an entry of the
// removal took. Each is proposed again, under the removal's hold, until
// its outcome is known: setting a hold it has, or expunging UIDs already
// gone, changes nothing, and a mailbox found gone on the repeat of its
// removal was removed by the first. So a removal whose mark, one piece
// and final removal each had their answer lost finishes at the first
// call, never clears its mark, and while deliveries race it on another
// node none answered as stored after the removal began is lost with the
// mailbox.
func TestRemoveMailboxRidesOutHiddenOutcomes(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	big := bigFolder(t, l, "Big", 11)
	if err := f.Barrier(ctx); err != nil { // f has all of Big (underway)
		t.Fatal(err)
	}
	h := &hideOnce{a: a, hidden: map[string]bool{}}
	hook := h.hook
	l.onApplied.Store(&hook)
	defer l.onApplied.Store(nil)
	var marked atomic.Bool
	race := raceRemoval(t, ctx, f, a, &marked)
	_, err := l.RemoveMailbox(ctx, a)
	race.stop()
	t.Logf("%v; %d messages; deliveries: %d stored (before the mark), %d refused at RCPT, %d refused at commit, %d unknown",
		err, len(big.Messages), race.stored.Load(), race.refusedRCPT.Load(), race.refusedCommit.Load(), race.unknown.Load())
	if err != nil {
		t.Fatalf("removal with hidden outcomes: %v", err)
	}
	for _, kind := range []string{"mark", "piece", "remove"} {
		if !h.hidden[kind] {
			t.Errorf("the outcome of the removal's %s was never hidden", kind)
		}
	}
	if h.cleared.Load() {
		t.Error("the removal cleared its mark part way")
	}
	if !marked.Load() {
		t.Error("the removal never marked the mailbox")
	}
	removedCleanly(t, ctx, len(race.storedAfter), a, l, f)
}

// The same with a real leader change: once the removal, run on a
// follower, has emptied some pieces, the leader hands leadership over
// (raft's LeadershipTransfer), and the pieces proposed meanwhile meet a
// transfer in progress, no leader, or a new one. The removal finishes at
// the first call, never clearing its mark, and no delivery answered as
// stored after it began is lost.
func TestRemoveMailboxRidesOutALeaderChange(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	big := bigFolder(t, l, "Big", 11)
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	h := &hideOnce{a: a, hidden: map[string]bool{"mark": true, "piece": true, "remove": true}} // watches for clears only
	hook := h.hook
	f.onApplied.Store(&hook)
	defer f.onApplied.Store(nil)
	var once sync.Once
	transferred := make(chan error, 1)
	step := hookCtx{ctx, func() error {
		if messagesOf(f, a) >= 0 && messagesOf(f, a) < int64(len(big.Messages))-300 {
			once.Do(func() { go func() { transferred <- l.raft.LeadershipTransfer().Error() }() })
		}
		return nil
	}}
	var marked atomic.Bool
	race := raceRemoval(t, ctx, f, a, &marked)
	_, err := f.RemoveMailbox(step, a)
	race.stop()
	t.Logf("%v; deliveries: %d stored (before the mark), %d refused at RCPT, %d refused at commit, %d unknown",
		err, race.stored.Load(), race.refusedRCPT.Load(), race.refusedCommit.Load(), race.unknown.Load())
	select {
	case terr := <-transferred:
		if terr != nil {
			t.Logf("leadership transfer: %v", terr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leader was never stepped down")
	}
	if err != nil {
		t.Fatalf("removal across a leader change: %v", err)
	}
	if h.cleared.Load() {
		t.Error("the removal cleared its mark part way")
	}
	removedCleanly(t, ctx, len(race.storedAfter), a, l, f)
}

// removedCleanly checks that no delivery whose RCPT came after the
// removal began was stored (storedAfter of them were), and that every
// node in nodes, after a barrier, no longer has the mailbox addr.
func removedCleanly(t *testing.T, ctx context.Context, storedAfter int, addr string, nodes ...*Node) {
	t.Helper()
	if storedAfter > 0 {
		t.Errorf("%d deliveries whose RCPT came after the removal began were stored, to be removed unbounced", storedAfter)
	}
	for _, n := range nodes {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.State().Mailbox(addr); !errors.Is(err, fsm.ErrNotFound) {
			t.Errorf("%s: removed mailbox: %v", n.ID(), err)
		}
	}
}
