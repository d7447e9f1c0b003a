package node

import (
	"errors"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// Two removals of one large mailbox at once, through two nodes of three,
// and a forward that keeps copies in it added while both run: the first
// (on l) empties its pieces, meets the refusal at its end and stops; the
// second (on f) is held part way meanwhile. From command encoding 14
// the first ends only its own hold: the mark stays while the second
// runs on, mail for the mailbox is refused (450 4.2.1) rather than
// taken, and the mark goes when the second is refused in turn, after
// which the mailbox takes mail and keeps it.
func TestRemoveMailboxRefusedBesideAnotherKeepsTheMark(t *testing.T) {
	taken, expunged := refusedBesideAnother(t, fsm.NewestEncoding)
	if taken || expunged {
		t.Fatalf("mail taken while the second removal ran (%v), expunged by it (%v)", taken, expunged)
	}
}

// Below 14 the first refusal clears the whole mark, as before: mail
// delivered while the second removal runs is taken, answered 250, and
// that removal's last piece expunges it before it is refused in turn.
func TestRemoveMailboxRefusedBesideAnotherGateBelow14(t *testing.T) {
	taken, expunged := refusedBesideAnother(t, fsm.EncodingJSON13)
	if !taken || !expunged {
		t.Fatalf("at 13: mail taken while the second removal ran (%v), expunged by it (%v); want both, as before", taken, expunged)
	}
}

// refusedBesideAnother runs the two removals on a cluster at encoding
// enc, delivers to the mailbox between the first's refusal and the
// second's next piece, and reports whether that mail was taken and
// whether the second removal then expunged it.
func refusedBesideAnother(t *testing.T, enc int) (taken, expunged bool) {
	l, f, ctx := removalPair(t, enc)
	a := "a@example.com"
	total := int64(len(bigFolder(t, l, "Big", 10).Messages))

	firstPiece, goFirst := make(chan int64), make(chan struct{})
	secondPiece, goSecond := make(chan struct{}), make(chan struct{})
	letFirst, letSecond := sync.OnceFunc(func() { close(goFirst) }), sync.OnceFunc(func() { close(goSecond) })
	wait := waitAMinute
	var once1, once2 sync.Once
	first := hookCtx{ctx, func() error {
		if m := messagesOf(l, a); m >= 0 && m < total {
			once1.Do(func() {
				firstPiece <- m
				wait(goFirst)
			})
		}
		return nil
	}}
	var left int64 // what the first removal's first piece left
	second := hookCtx{ctx, func() error {
		if m := messagesOf(f, a); m >= 0 && m < left {
			once2.Do(func() {
				close(secondPiece)
				wait(goSecond)
			})
		}
		return nil
	}}

	var err1, err2 error
	done1, done2 := make(chan struct{}), make(chan struct{})
	go func() { _, err1 = l.RemoveMailbox(first, a); close(done1) }()
	defer wait(done1)
	defer letFirst()
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
	defer letSecond()
	select {
	case <-secondPiece:
	case <-time.After(time.Minute):
		t.Fatal("the second removal emptied no piece")
	}
	// Both have passed their own check; the removal checks again.
	mustApply(t, l, &fsm.ForwardAdd{Address: a, Targets: []string{"b@example.com"}, KeepCopy: true})
	letFirst()
	wait(done1)
	if !errors.Is(err1, fsm.ErrNotEmpty) {
		t.Fatalf("first removal, a forward keeping copies added: %v, want ErrNotEmpty", err1)
	}

	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	res, rerr := f.Resolve(ctx, a)
	switch {
	case errors.Is(rerr, ErrMailboxRemoving):
	case rerr != nil:
		t.Fatalf("RCPT while the second removal runs: %v", rerr)
	default:
		out, err := deliverText(ctx, f, res.Mailboxes, "in between")
		if err != nil {
			t.Fatal(err)
		}
		taken = out.Rejected[a] == nil
	}
	if !taken && !removingOn(f, a) {
		t.Fatal("mail refused, yet the mailbox is not marked")
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	before := messagesOf(f, a)

	letSecond()
	wait(done2)
	if !errors.Is(err2, fsm.ErrNotEmpty) {
		t.Fatalf("second removal: %v, want ErrNotEmpty", err2)
	}
	for _, n := range []*Node{l, f} {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if removingOn(n, a) {
			t.Fatalf("%s: marked after both removals were refused", n.ID())
		}
		if h, err := n.State().RemovalHolds(a); err != nil || h != 0 {
			t.Fatalf("%s: %d holds (%v) after both removals were refused", n.ID(), h, err)
		}
	}
	expunged = taken && messagesOf(f, a) < before
	if out, err := deliverText(ctx, f, []string{a}, "after"); err != nil || len(out.Rejected) != 0 {
		t.Fatalf("delivery after both removals were refused: %+v, %v", out, err)
	}
	if err := l.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if m := messagesOf(l, a); m != 1 {
		t.Fatalf("after both removals: %d messages, want the one delivered after", m)
	}
	return taken, expunged
}
