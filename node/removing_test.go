package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
)

// removingOn reports whether n's state has a marked as being removed.
func removingOn(n *Node, a string) bool {
	mb, err := n.State().Mailbox(a)
	return err == nil && mb.Removing
}

func deliverText(ctx context.Context, n *Node, boxes []string, text string) (DeliveryResult, error) {
	return n.Deliver(ctx, Message{From: "s@elsewhere.net", Mailboxes: boxes, Received: time.Now()},
		strings.NewReader("Subject: "+text+"\r\n\r\n"+text+"\r\n"))
}

// While a mailbox is marked as being removed, RCPT for it is refused as
// temporary, and a forward that reaches it and others leaves it out; a
// delivery resolved before the mark and committed after it is refused
// for that mailbox (and stored for the others); APPEND, COPY and MOVE into it are
// refused; the admin API shows the mark. Clearing it makes the mailbox
// take mail again.
func TestRemovingMarkRefusesMail(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	if _, err := deliverText(ctx, f, []string{a}, "before"); err != nil {
		t.Fatal(err)
	}
	early, err := f.Resolve(ctx, "team@example.com")
	if err != nil || len(early.Mailboxes) != 2 {
		t.Fatalf("resolve team before the mark: %+v, %v", early, err)
	}
	mustMark(t, ctx, l, a, true)
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}

	res, err := deliverText(ctx, f, early.Mailboxes, "resolved before the mark")
	if err != nil || !errors.Is(res.Rejected[a], ErrMailboxRemoving) || len(res.Rejected) != 1 {
		t.Fatalf("delivery resolved before the mark: %+v, %v; want %s refused as being removed, b stored", res, err, a)
	}
	for _, rcpt := range []string{a, "A+tag@example.com"} {
		if _, err := f.Resolve(ctx, rcpt); !errors.Is(err, ErrMailboxRemoving) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("RCPT %s while marked: %v, want ErrMailboxRemoving (temporary)", rcpt, err)
		}
	}
	// A forward to it and another mailbox (a list) reaches the other:
	// its mail does not wait for the removal (listmembers_test.go).
	if res, err := f.Resolve(ctx, "team@example.com"); err != nil || len(res.Mailboxes) != 1 || res.Mailboxes[0] != "b@example.com" {
		t.Errorf("RCPT team while a is marked: %+v, %v; want b alone", res, err)
	}
	if _, err := f.Resolve(ctx, "b@example.com"); err != nil {
		t.Errorf("RCPT b while a is marked: %v", err)
	}
	if _, err := f.Append(ctx, a, "INBOX", nil, time.Time{}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); !errors.Is(err, ErrMailboxRemoving) {
		t.Errorf("APPEND while marked: %v", err)
	}
	for _, move := range []bool{false, true} {
		if _, err := f.Copy(ctx, a, "INBOX", "Trash", []uint32{1}, move); !errors.Is(err, ErrMailboxRemoving) {
			t.Errorf("COPY (move %v) while marked: %v", move, err)
		}
	}
	if code, body := adminDo(t, f, "GET", "/v1/mailboxes/"+a, string(testSecret), ""); code != http.StatusOK || !strings.Contains(body, `"removing":true`) {
		t.Errorf("admin view while marked: %d %s", code, body)
	}

	mustMark(t, ctx, l, a, false)
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	late, err := f.Resolve(ctx, "team@example.com")
	if err != nil {
		t.Fatalf("RCPT after the mark was cleared: %v", err)
	}
	if res, err := deliverText(ctx, f, late.Mailboxes, "after"); err != nil || len(res.Rejected) != 0 {
		t.Fatalf("delivery after the mark was cleared: %+v, %v", res, err)
	}
}

// A mailbox larger than one entry is removed while deliveries run
// against it on another node. Once the removal is under way (its mark,
// or a first piece emptied, seen in the delivering node's state before
// the RCPT), no delivery to it is answered as stored: each is refused as
// temporary, at RCPT or at commit, or as unknown once the mailbox is
// gone. Mail answered as stored was committed before the mark, and went
// with the mailbox as its removal meant.
//
// A leader change on a loaded machine can fail the removal part way
// (503 to the operator). It then takes back its mark and the mailbox
// takes mail again, so mail answered as stored after its RCPT saw the
// removal begin is allowed, but must still be there when the removal
// has failed: none of it may go with the pieces. The removal is then run
// again, as an operator repeats `mailbox rm`, with deliveries racing it
// anew, until one finishes.
func TestRemoveMailboxRefusesDeliveriesWhileEmptying(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	big := bigFolder(t, l, "Big", 11)
	var marked atomic.Bool
	for try := 1; ; try++ {
		if err := f.Barrier(ctx); err != nil { // f has all of Big (underway)
			t.Fatal(err)
		}
		race := raceRemoval(t, ctx, f, a, &marked)
		time.Sleep(50 * time.Millisecond) // some deliveries before the removal
		_, err := l.RemoveMailbox(ctx, a)
		race.stop()
		t.Logf("attempt %d: %v; %d messages removed; deliveries: %d stored (before the mark), %d refused at RCPT, %d refused at commit, %d unknown",
			try, err, len(big.Messages), race.stored.Load(), race.refusedRCPT.Load(), race.refusedCommit.Load(), race.unknown.Load())
		if err == nil || try > 1 && errors.Is(err, fsm.ErrNotFound) { // an earlier attempt's last entry took after all
			if len(race.storedAfter) > 0 {
				t.Errorf("%d deliveries whose RCPT came after the removal began were stored, to be removed unbounced", len(race.storedAfter))
			}
			break
		}
		if !temporaryAdmin(err) || try == 5 {
			t.Fatalf("removal attempt %d: %v", try, err)
		}
		race.keptAfterFailure(t, ctx, f, a)
	}
	if !marked.Load() {
		t.Error("the removal never marked the mailbox")
	}
	for _, n := range []*Node{l, f} {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := n.State().Mailbox(a); !errors.Is(err, fsm.ErrNotFound) {
			t.Errorf("%s: removed mailbox: %v", n.ID(), err)
		}
	}
}

// underway reports whether n's state shows the removal of a begun: the
// mark, or its folder Big, which nothing else shrinks, below its size.
func underway(n *Node, a string, size int) bool {
	if removingOn(n, a) {
		return true
	}
	f, err := n.State().Folder(a, "Big")
	return err != nil || f.Messages < int64(size)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// cutCtx is a context that reports itself cancelled once cut says so,
// checked whenever its Err is asked: a removal then stops at the next
// piece, on any machine's timing.
type cutCtx struct {
	context.Context
	cut func() bool
}

func (c cutCtx) Err() error {
	if c.cut() {
		return context.Canceled
	}
	return c.Context.Err()
}

// A removal cut off part way (its context cancelled after the first
// pieces emptied some of the mailbox) clears its mark, so the mailbox
// takes mail again; running it again finishes it.
func TestRemoveMailboxStoppedPartWayClearsMark(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	big := bigFolder(t, l, "Big", 11)
	cut := cutCtx{ctx, func() bool {
		mb, err := l.State().Mailbox(a)
		return err == nil && mb.Messages < int64(len(big.Messages))
	}}
	if _, err := l.RemoveMailbox(cut, a); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("removal cut off part way: %v", err)
	}
	for _, n := range []*Node{l, f} {
		waitFor(t, 10*time.Second, n.ID()+": mark cleared", func() bool {
			mb, err := n.State().Mailbox(a)
			return err == nil && !mb.Removing && mb.Messages < int64(len(big.Messages))
		})
	}
	res, err := f.Resolve(ctx, a)
	if err != nil {
		t.Fatalf("RCPT after the stopped removal: %v", err)
	}
	if out, err := deliverText(ctx, f, res.Mailboxes, "kept"); err != nil || len(out.Rejected) != 0 {
		t.Fatalf("delivery after the stopped removal: %+v, %v", out, err)
	}
	if err := removeAsOperator(t, ctx, l, a); err != nil {
		t.Fatalf("second removal: %v", err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.State().Mailbox(a); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("mailbox after the second removal: %v", err)
	}
}

// Below command encoding 10 a large mailbox is removed as before: no
// mark (which such a cluster cannot carry), emptied in pieces, removed.
func TestRemoveMailboxBelowEncoding10DoesNotMark(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.EntryMessages = 100
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON9}
	})
	l := c.leader(5 * time.Second)
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	big := bigFolder(t, l, "Big", 10)
	n := entriesDuring(t, l, func() error { _, err := l.RemoveMailbox(ctx, a); return err })
	if n < uint64(len(big.Messages)/100) {
		t.Errorf("removal of %d messages took %d entries", len(big.Messages), n)
	}
	if _, err := l.State().Mailbox(a); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("removed mailbox: %v", err)
	}
}

// A mark left behind by a removal that could not clear it (the cluster
// was unavailable) is cleared by the next removal if that one is
// refused too (a forward now keeps copies in the mailbox), and goes
// with the mailbox when one succeeds.
func TestRemoveMailboxClearsAMarkLeftBehind(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	mustMark(t, ctx, l, a, true)
	mustApply(t, l, &fsm.ForwardAdd{Address: a, Targets: []string{"b@example.com"}, KeepCopy: true})
	if _, err := f.RemoveMailbox(ctx, a); !errors.Is(err, fsm.ErrNotEmpty) {
		t.Fatalf("removal of a mailbox a forward keeps copies in: %v", err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if removingOn(f, a) {
		t.Fatal("the refused removal left the mark")
	}
	mustMark(t, ctx, l, a, true)
	mustApply(t, l, &fsm.ForwardRemove{Address: a})
	if _, err := f.RemoveMailbox(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := f.State().Mailbox(a); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("removed mailbox: %v", err)
	}
}

// A removal that finds the mark already set cannot tell a mark left
// behind from one a removal still running elsewhere holds (its mark is
// all another node sees of it). If such a removal stops part way for a
// reason of its own (here its context, after its first pieces), it must
// leave the mark: clearing it would let mail in, answered 250, that the
// running removal then takes away with the mailbox. Only a removal it
// set, or a refusal that no removal can get past (a forward keeping
// copies, TestRemoveMailboxClearsAMarkLeftBehind), clears the mark.
func TestRemoveMailboxStoppedPartWayKeepsAMarkItFound(t *testing.T) {
	l, f, ctx := pieceRaceCluster(t, 100)
	a := "a@example.com"
	big := bigFolder(t, l, "Big", 11)
	// The removal under way on l: its mark, and pieces still to come.
	mustMark(t, ctx, l, a, true)
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	cut := cutCtx{ctx, func() bool {
		mb, err := f.State().Mailbox(a)
		return err == nil && mb.Messages < int64(len(big.Messages))
	}}
	if _, err := f.RemoveMailbox(cut, a); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("second removal cut off part way: %v", err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if !removingOn(f, a) {
		t.Fatal("a removal that stopped part way cleared a mark it found, which another removal may hold")
	}
	if _, err := f.Resolve(ctx, a); !errors.Is(err, ErrMailboxRemoving) {
		t.Fatalf("RCPT while the other removal runs: %v, want ErrMailboxRemoving", err)
	}
	if err := removeAsOperator(t, ctx, l, a); err != nil {
		t.Fatalf("the removal finishing: %v", err)
	}
}
