package node

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// hookCtx is a context whose Err runs hook first, whenever it is asked:
// a removal looks at it before each piece, so the hook can hold the
// removal there, or cut it off.
type hookCtx struct {
	context.Context
	hook func() error
}

func (c hookCtx) Err() error {
	if err := c.hook(); err != nil {
		return err
	}
	return c.Context.Err()
}

// messagesOf is the message count of addr in n's state (-1 once gone).
func messagesOf(n *Node, addr string) int64 {
	mb, err := n.State().Mailbox(addr)
	if err != nil {
		return -1
	}
	return mb.Messages
}

// removalPair is a three-node cluster at command encoding enc that
// proposes removals in pieces of 100 messages, its leader, a follower,
// and a context for a test of two removals at once through them.
func removalPair(t *testing.T, enc int) (l, f *Node, ctx context.Context) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.EntryMessages = 100
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: enc}
	})
	l = c.leader(5 * time.Second)
	return l, c.followers(l)[0], ctxT(t, 4*time.Minute)
}

// waitAMinute waits for ch to close, or a minute: a removal held by a
// test hook is let go by its deferred release either way.
func waitAMinute(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(time.Minute):
	}
}

// Two removals of one large mailbox at once, through two nodes: the
// first (on l) sets the mark and empties a piece; the second (on f)
// starts and empties a piece of its own; then the first is cut off and
// fails, and the second is held before its next piece. From command
// encoding 12 the mark is the second's too: it stays, RCPT for the
// mailbox is refused as temporary (450 4.2.1 over SMTP) on both nodes,
// and a delivery resolved before is refused at commit, until the second
// removal, let go, removes the mailbox.
func TestRemoveMailboxFailingBesideAnotherKeepsTheMark(t *testing.T) {
	if marked := removeBesideAnother(t, fsm.NewestEncoding); !marked {
		t.Fatal("the first removal's failure cleared the mark while the second runs on")
	}
}

// Below 12 the mark names no owner, and the first removal's failure
// clears it while the second runs on, as before (mail is then taken,
// answered 250, only to be removed with the mailbox).
func TestRemoveMailboxFailingBesideAnotherGateBelow12(t *testing.T) {
	if marked := removeBesideAnother(t, fsm.EncodingJSON11); marked {
		t.Fatal("at 11 the mark outlived the removal that set it; want it cleared, as before")
	}
}

// removeBesideAnother runs the two removals on a cluster at encoding enc
// and reports whether the mark stayed, on both nodes, while the second
// ran on; where it stays, it also checks that mail is refused.
func removeBesideAnother(t *testing.T, enc int) (marked bool) {
	l, f, ctx := removalPair(t, enc)
	a := "a@example.com"
	total := int64(len(bigFolder(t, l, "Big", 11).Messages))
	early, err := f.Resolve(ctx, a)
	if err != nil {
		t.Fatal(err)
	}

	firstPiece, secondPiece, release := make(chan int64), make(chan struct{}), make(chan struct{})
	letGo := sync.OnceFunc(func() { close(release) })
	wait := waitAMinute
	var once1, once2 sync.Once
	first := hookCtx{ctx, func() error {
		if m := messagesOf(l, a); m >= 0 && m < total {
			once1.Do(func() {
				firstPiece <- m
				wait(secondPiece)
			})
			return context.Canceled
		}
		return nil
	}}
	var left int64 // what the first removal left
	second := hookCtx{ctx, func() error {
		if m := messagesOf(f, a); m >= 0 && m < left {
			once2.Do(func() {
				close(secondPiece)
				wait(release)
			})
		}
		return nil
	}}

	var err1, err2 error
	done1, done2 := make(chan struct{}), make(chan struct{})
	go func() { _, err1 = l.RemoveMailbox(first, a); close(done1) }()
	select {
	case left = <-firstPiece:
	case <-time.After(time.Minute):
		t.Fatal("the first removal emptied no piece")
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	go func() { _, err2 = f.RemoveMailbox(second, a); close(done2) }()
	defer wait(done2)
	defer letGo() // runs first
	for _, ch := range []chan struct{}{secondPiece, done1} {
		select {
		case <-ch:
		case <-time.After(time.Minute):
			t.Fatal("the second removal emptied no piece, or the first did not end")
		}
	}
	if !errors.Is(err1, ErrUnavailable) {
		t.Fatalf("first removal cut off: %v", err1)
	}
	marked = true
	for _, n := range []*Node{l, f} {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if messagesOf(n, a) < 0 {
			t.Fatalf("%s: the mailbox is gone while the second removal is held", n.ID())
		}
		marked = marked && removingOn(n, a)
	}
	if marked {
		for _, n := range []*Node{l, f} {
			if _, err := n.Resolve(ctx, a); !errors.Is(err, ErrMailboxRemoving) {
				t.Errorf("%s: RCPT while the second removal runs: %v, want ErrMailboxRemoving (450 4.2.1)", n.ID(), err)
			}
		}
		if res, err := deliverText(ctx, f, early.Mailboxes, "resolved before"); err != nil || !errors.Is(res.Rejected[a], ErrMailboxRemoving) {
			t.Errorf("delivery resolved before, committed while the second removal runs: %+v, %v", res, err)
		}
	}
	letGo()
	wait(done2)
	if err2 != nil {
		t.Fatalf("second removal: %v", err2)
	}
	for _, n := range []*Node{l, f} {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.State().Mailbox(a); !errors.Is(err, fsm.ErrNotFound) {
			t.Errorf("%s: mailbox after the second removal: %v", n.ID(), err)
		}
	}
	return marked
}

// A hold left by a removal whose node died part way (its name, and no
// one to release it) keeps the mark; repeating `mailbox rm` finishes the
// removal, and the holds go with the mailbox: one made again under the
// address takes mail.
func TestRemoveMailboxAfterADeadRemoversHold(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	bigFolder(t, l, "Big", 8)
	if err := l.markRemoving(ctx, a, true, "died-part-way"); err != nil {
		t.Fatal(err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Resolve(ctx, a); !errors.Is(err, ErrMailboxRemoving) {
		t.Fatalf("RCPT under a dead removal's hold: %v, want ErrMailboxRemoving", err)
	}
	if _, err := f.RemoveMailbox(ctx, a); err != nil {
		t.Fatalf("repeated removal: %v", err)
	}
	mustApply(t, l, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: a}}})
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := f.State().RemovalHolds(a); err != nil || n != 0 {
		t.Fatalf("mailbox made again: %d holds (%v)", n, err)
	}
	if _, err := f.Resolve(ctx, a); err != nil {
		t.Fatalf("RCPT for the mailbox made again: %v", err)
	}
}
