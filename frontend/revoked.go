package frontend

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"powermail/node"
)

// Sessions whose login no longer holds.
//
// Disabling a mailbox (a leaked password, say) refuses its new logins at
// once (Authenticate reads after the barrier). Sessions already logged
// in are stopped too: submission at its next MAIL (submission.go), IMAP
// at its next command or IDLE poll (imap_revoke.go), POP3 at its next
// command (pop3revoke.go). Removing the mailbox does the same.
//
// The check is node.Node's AccountActive: a read of this node's replica
// of the directory, no barrier (a change reaches every node within a
// heartbeat). It costs about 1.5 µs and 5 allocations on a small
// directory (go test -bench AccountActive ./node) and more on a large
// one (two Pebble reads; fsm's Resolve, one read, is 3.7 µs at p50 and
// 11 µs at p99 with a million mailboxes), which is more than an IMAP
// NOOP or a POP3 STAT should pay each time. So a session asks at most
// once per AccountCheckInterval (a second by default): a busy session
// is stopped within that interval of the change, an idle one at its
// next command.

// DefaultAccountCheckInterval is how often, at most, a logged-in IMAP or
// POP3 session asks whether its mailbox is still enabled.
const DefaultAccountCheckInterval = time.Second

// accountCheck rate-limits one session's AccountActive calls. It is safe
// for concurrent use (an IMAP session's reader and its IDLE goroutine).
type accountCheck struct {
	every time.Duration
	next  atomic.Int64 // unix nanoseconds before which no check is made
	gone  atomic.Bool  // the login no longer holds: sticky
}

// start arms the check at login: the login has just read the directory.
func (a *accountCheck) start(every time.Duration, now time.Time) {
	a.every = every
	a.next.Store(now.Add(every).UnixNano())
}

// revoked reports whether the mailbox addr has been disabled or removed
// since the login, asking store (if it can tell: node.Node can) at most
// once per interval. The error is AccountActive's, returned with true
// only when the change is first seen. A directory that cannot be read (ErrUnavailable)
// lets the session go on: it is asked again after the interval.
func (a *accountCheck) revoked(ctx context.Context, store any, addr string, timeout time.Duration) (bool, error) {
	if a.gone.Load() {
		return true, nil
	}
	ac, ok := store.(accountChecker)
	if !ok || addr == "" {
		return false, nil
	}
	now := time.Now().UnixNano()
	next := a.next.Load()
	if now < next || !a.next.CompareAndSwap(next, now+int64(a.every)) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := ac.AccountActive(ctx, addr)
	if errors.Is(err, node.ErrAuthFailed) {
		a.gone.Store(true)
		return true, err
	}
	return false, err
}
