package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// removalRace delivers to a mailbox, and to team@ (a forward that
// reaches it), through one node until stopped, while a removal of the
// mailbox runs, and sorts the outcomes.
type removalRace struct {
	done chan struct{}
	wg   sync.WaitGroup

	stored, refusedRCPT, refusedCommit, unknown atomic.Int64

	mu sync.Mutex
	// storedAfter holds the body hashes of deliveries answered as stored
	// whose RCPT came after the node's state showed the removal begun.
	storedAfter []string
}

var raceText atomic.Int64

// raceRemoval starts delivering to a through f. A delivery counts as
// coming after the removal began when f's state, before its RCPT, had a
// marked or Big (which only a removal shrinks) below its size at the
// start. marked is set whenever f's state has the mark.
func raceRemoval(t *testing.T, ctx context.Context, f *Node, a string, marked *atomic.Bool) *removalRace {
	t.Helper()
	big, err := f.State().Folder(a, "Big")
	if err != nil {
		t.Fatal(err)
	}
	r := &removalRace{done: make(chan struct{})}
	r.wg.Go(func() { // the mark as f's state has it, whatever the loops do
		for !r.stopped() {
			if removingOn(f, a) {
				marked.Store(true)
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	for _, rcpt := range []string{a, "team@example.com"} {
		r.wg.Go(func() {
			for !r.stopped() {
				if err := r.deliverOnce(ctx, f, a, rcpt, int(big.Messages)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	return r
}

func (r *removalRace) stopped() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop ends the deliveries and waits for those in flight.
func (r *removalRace) stop() {
	close(r.done)
	r.wg.Wait()
}

// deliverOnce resolves rcpt and delivers one message of its own text
// there, counting how it went; an error is a failure of the test.
func (r *removalRace) deliverOnce(ctx context.Context, f *Node, a, rcpt string, size int) error {
	after := underway(f, a, size)
	res, err := f.Resolve(ctx, rcpt)
	switch {
	case errors.Is(err, ErrMailboxRemoving):
		r.refusedRCPT.Add(1)
		return nil
	case errors.Is(err, ErrUnknownRecipient):
		r.unknown.Add(1)
		return nil
	case err != nil:
		return fmt.Errorf("RCPT %s: %w", rcpt, err)
	}
	if !containsString(res.Mailboxes, a) {
		r.unknown.Add(1) // team@ without a: a is gone
		return nil
	}
	text := fmt.Sprintf("during %d", raceText.Add(1))
	out, err := deliverText(ctx, f, res.Mailboxes, text)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", rcpt, err)
	}
	switch rej := out.Rejected[a]; {
	case rej == nil:
		r.stored.Add(1)
		if after {
			h := storage.HashBytes([]byte("Subject: " + text + "\r\n\r\n" + text + "\r\n"))
			r.mu.Lock()
			r.storedAfter = append(r.storedAfter, h.String())
			r.mu.Unlock()
		}
	case errors.Is(rej, ErrMailboxRemoving):
		r.refusedCommit.Add(1)
	case errors.Is(rej, ErrUnknownRecipient):
		r.unknown.Add(1)
	default:
		return fmt.Errorf("delivery to %s: %s refused with %w", rcpt, a, rej)
	}
	return nil
}

// keptAfterFailure checks, after a removal of a failed part way, that
// every delivery answered as stored after the removal began is still in
// a's INBOX: the failed removal let it in (its mark taken back), and
// must not have taken it with its pieces.
func (r *removalRace) keptAfterFailure(t *testing.T, ctx context.Context, f *Node, a string) {
	t.Helper()
	if len(r.storedAfter) == 0 {
		return
	}
	v, err := f.View(ctx, a, "INBOX")
	if err != nil {
		t.Fatalf("%d deliveries stored after the failed removal began, and its INBOX: %v", len(r.storedAfter), err)
	}
	have := map[string]bool{}
	for _, m := range v.Messages {
		have[m.Hash] = true
	}
	lost := 0
	for _, h := range r.storedAfter {
		if !have[h] {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d deliveries answered as stored after the removal began are gone, though the removal failed", lost, len(r.storedAfter))
		return
	}
	t.Logf("%d deliveries stored after the failed removal took back its mark, all kept", len(r.storedAfter))
}

// temporaryAdmin reports whether the admin API answers err with 503:
// the operator is told to try again.
func temporaryAdmin(err error) bool {
	return errorStatus(err) == http.StatusServiceUnavailable
}

// removeAsOperator runs RemoveMailbox on n until it finishes, again
// after each temporary failure (503: a leader change on a loaded
// machine fails the removal part way), as an operator repeats
// `mailbox rm`. A repeat that finds the mailbox gone means an earlier
// attempt's last entry took after all.
func removeAsOperator(t *testing.T, ctx context.Context, n *Node, a string) error {
	t.Helper()
	for try := 1; ; try++ {
		_, err := n.RemoveMailbox(ctx, a)
		if err == nil || try > 1 && errors.Is(err, fsm.ErrNotFound) {
			return nil
		}
		if !temporaryAdmin(err) || try == 5 {
			return err
		}
		t.Logf("removal of %s, attempt %d: %v; again", a, try, err)
	}
}

// mustMark sets or clears, for a test, a's mark as a removal of no known
// owner would. A leader change on a loaded machine can hide its outcome
// (ErrIndeterminate); it is then proposed again, which leaves what the
// first did (a hold is set or ended once).
func mustMark(t *testing.T, ctx context.Context, n *Node, a string, on bool) {
	t.Helper()
	for try := 1; ; try++ {
		err := n.markRemoving(ctx, a, on, "")
		if err == nil {
			return
		}
		if !errors.Is(err, ErrIndeterminate) || try == 5 {
			t.Fatalf("mark %s removing=%v: %v", a, on, err)
		}
		t.Logf("mark %s removing=%v: %v; again", a, on, err)
	}
}
