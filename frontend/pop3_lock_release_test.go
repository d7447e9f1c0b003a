package frontend_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"powermail/frontend"
	"powermail/node"
	"powermail/node/nodetest"
)

// uncertainLocks is a real node whose next LockMaildrop fails in one of
// the two ways a caller cannot tell apart: after the lock was committed
// (the answer is lost, as when the entry commits but this node has not
// applied it by the deadline, or the leader changes after committing),
// or before anything was proposed.
type uncertainLocks struct {
	frontend.MailStore
	loseAnswer  atomic.Bool // next call: lock, then report a failure
	loseRequest atomic.Bool // next call: report a failure, lock nothing
}

func (s *uncertainLocks) LockMaildrop(ctx context.Context, addr, holder string) (func(context.Context) error, error) {
	if s.loseRequest.CompareAndSwap(true, false) {
		return nil, fmt.Errorf("%w: request lost", node.ErrUnavailable)
	}
	unlock, err := s.MailStore.LockMaildrop(ctx, addr, holder)
	if err == nil && s.loseAnswer.CompareAndSwap(true, false) {
		// The unlock function is lost with the answer. The session
		// cancels ctx, so the lease is no longer renewed, but it lasts
		// node.DefaultMaildropLease (30 s) from the commit.
		return nil, fmt.Errorf("%w: answer lost after the commit", node.ErrUnavailable)
	}
	return unlock, err
}

// A login whose maildrop lock failed in a way that may have followed the
// commit gets -ERR [SYS/TEMP], and the lock is given back at once: the
// user's next session is not kept out for the lease's 30 s by a lock no
// session holds. A lock held by another session is left alone.
func TestPOP3UncertainLockFailureGivesTheLockBack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw", "lost@example.com", "held@example.com")
	n := c.Nodes[0]
	store := &uncertainLocks{MailStore: n}
	_, addr := pop3Serve(t, store, pop3TestAuth(n, true), pop3TestConfig(), false)

	t.Run("answer lost", func(t *testing.T) {
		store.loseAnswer.Store(true)
		a := pop3Dial(t, addr)
		a.ok("USER lost@example.com")
		a.fail("PASS pw", "SYS/TEMP")
		b := pop3Dial(t, addr)
		b.login("lost@example.com", "pw")
		b.quit()
		a.login("lost@example.com", "pw")
		a.quit()
	})
	t.Run("request lost, another session holds the lock", func(t *testing.T) {
		holder := pop3Dial(t, addr)
		holder.login("held@example.com", "pw")
		store.loseRequest.Store(true)
		a := pop3Dial(t, addr)
		a.ok("USER held@example.com")
		a.fail("PASS pw", "SYS/TEMP")
		b := pop3Dial(t, addr)
		b.ok("USER held@example.com")
		b.fail("PASS pw", "IN-USE")
		holder.quit()
		a.login("held@example.com", "pw")
		a.quit()
	})
}

// Only a failure that leaves the outcome open is followed by a release;
// ErrLocked says the lock is another session's, and nothing is sent.
func TestPOP3LockRefusalSendsNoRelease(t *testing.T) {
	f, addr := pop3FakeServer(t, pop3TestConfig())
	for _, tc := range []struct {
		err   error
		code  string
		calls int
	}{
		{fmt.Errorf("held elsewhere: %w", node.ErrLocked), "IN-USE", 1},
		{fmt.Errorf("no leader: %w", node.ErrUnavailable), "SYS/TEMP", 2},
	} {
		f.set(func(f *pop3Fake) { f.lockErr, f.lockCalls = tc.err, 0 })
		c := pop3Dial(t, addr)
		c.ok("USER " + pop3User)
		c.fail("PASS secret", tc.code)
		f.set(func(f *pop3Fake) {
			if f.lockCalls != tc.calls {
				t.Errorf("%v: %d LockMaildrop calls, want %d", tc.err, f.lockCalls, tc.calls)
			}
			f.lockErr = nil
		})
	}
}
