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
// command (pop3revoke.go). Removing the mailbox does the same, and so
// does changing its password, to the sessions that logged in with the
// old one: a session keeps its node.Login, whose Credential
// fingerprints the stored hash its password matched, and a different
// hash now stored ends it with a reply that asks for the new password.
// A change of quota ends nothing.
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
// next command. The password hash is read with the record, so the
// fingerprint adds no read, only its SHA-256 (about 0.3 µs, no
// allocation: -bench CredentialOf).

// DefaultAccountCheckInterval is how often, at most, a logged-in IMAP or
// POP3 session asks whether its login still holds.
const DefaultAccountCheckInterval = time.Second

// revocation is why a login no longer holds.
type revocation int32

const (
	loginHolds      revocation = iota
	accountRevoked             // the mailbox was disabled or removed
	passwordChanged            // the mailbox's password was changed
	nodeRemoved                // this node was removed from the cluster (node.ErrRemoved)
)

// revocationOf classifies AccountActive's error.
func revocationOf(err error) revocation {
	switch {
	case errors.Is(err, node.ErrRemoved):
		return nodeRemoved
	case errors.Is(err, node.ErrPasswordChanged):
		return passwordChanged
	case errors.Is(err, node.ErrAuthFailed):
		return accountRevoked
	}
	return loginHolds
}

// accountCheck rate-limits one session's AccountActive calls. It is safe
// for concurrent use (an IMAP session's reader and its IDLE goroutine).
type accountCheck struct {
	every time.Duration
	login node.Login   // set at start, before any check
	next  atomic.Int64 // unix nanoseconds before which no check is made
	gone  atomic.Int32 // a revocation once the login no longer holds: sticky
}

// start arms the check at login: the login has just read the directory.
func (a *accountCheck) start(login node.Login, every time.Duration, now time.Time) {
	a.login = login
	a.every = every
	a.next.Store(now.Add(every).UnixNano())
}

// why is the reason the login no longer holds, or loginHolds.
func (a *accountCheck) why() revocation { return revocation(a.gone.Load()) }

// revoked reports why the login no longer holds (its mailbox disabled or
// removed, or its password changed) or loginHolds, asking store (if it
// can tell: node.Node can) at most once per interval. The error is
// AccountActive's, returned with a revocation only when the change is
// first seen. A directory that cannot be read (ErrUnavailable) lets the
// session go on: it is asked again after the interval.
func (a *accountCheck) revoked(ctx context.Context, store any, timeout time.Duration) (revocation, error) {
	if why := a.why(); why != loginHolds {
		return why, nil
	}
	ac, ok := store.(accountChecker)
	if !ok || a.login.Address == "" {
		return loginHolds, nil
	}
	now := time.Now().UnixNano()
	next := a.next.Load()
	if now < next || !a.next.CompareAndSwap(next, now+int64(a.every)) {
		return loginHolds, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := ac.AccountActive(ctx, a.login)
	why := revocationOf(err)
	if why != loginHolds {
		a.gone.Store(int32(why))
	}
	return why, err
}
