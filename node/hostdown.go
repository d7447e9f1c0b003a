package node

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"powermail/fsm"
)

// ErrHostDown: a destination host failed a connection attempt a short
// while ago, so this attempt did not try it again (temporary).
var ErrHostDown = errors.New("destination host failed recently; not tried again yet")

// hostHealth remembers that a destination host could not be reached, so
// that, for QueueConfig.HostDownTime, attempts skip it at once instead
// of each waiting out a dial or a greeting: many entries for one dead
// server would otherwise hold every queue worker, one timeout each, and
// stall mail for every other destination. A successful dial clears it.
//
// An operator's retry (queueretry.go) dials a marked host all the same:
// the operator may have just fixed it.
type hostHealth struct {
	mu        sync.Mutex
	downUntil time.Time
	since     time.Time // the first failed dial with no success after it
	why       error
}

// hostDownError is ErrHostDown, with the failure that marked the host,
// when the mark lapses and since when the host has failed.
type hostDownError struct {
	until, since time.Time
	err          error
}

func (e *hostDownError) Error() string { return e.err.Error() }
func (e *hostDownError) Unwrap() error { return e.err }

// again is when an entry skipped at now for this mark is to come back:
// when the mark lapses, and not before the host has been failing for as
// long again as it has so far (at most ceiling ahead). A skip counts no
// attempt, so the entry's own backoff does not slow it; without this an
// outage of hours gave each of its entries a lease and a give-back
// every HostDownTime, while only a few of them dial each time.
func (e *hostDownError) again(now time.Time, ceiling time.Duration) time.Time {
	out := now.Add(min(now.Sub(e.since), ceiling))
	if e.until.After(out) {
		return e.until
	}
	return out
}

// down returns a *hostDownError while the host is marked down.
func (h *hostHealth) down(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.downUntil) {
		return &hostDownError{until: h.downUntil, since: h.since, err: h.why}
	}
	return nil
}

// observe records the result of a dial that ran within its own time
// budget: a failure marks the host down, a success clears the mark. It
// reports whether the host has just been marked down. A dial the
// attempt's deadline or a cancellation cut short is the caller's to
// leave out: it says nothing about the host.
func (h *hostHealth) observe(host string, err error, now time.Time, d time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.downUntil, h.since = time.Time{}, time.Time{}
		return false
	}
	if !errors.Is(err, ErrNoRoute) || d <= 0 {
		return false
	}
	fresh := !now.Before(h.downUntil)
	if h.since.IsZero() {
		h.since = now
	}
	h.downUntil = now.Add(d)
	h.why = fmt.Errorf("%w: %s (%v)", ErrHostDown, host, err)
	return fresh
}

// outcomeDown marks the recipients of a destination whose every host was
// skipped, marked down. Like outcomeBusy it is never recorded: the
// attempt reached no server, so it counts none and its entry's backoff
// does not grow (workEntry gives the entry back, due at downDue).
const outcomeDown = "down"

// downDue is when e, given back because its hosts were marked down, is
// due again: after the backoff it waited last time, not a grown one, and
// not before back, the latest its hosts' marks gave (hostDownError.again:
// sooner it would only be given back again, a commit each time); never
// past the end of its lifetime, when its failure notice is owed
// (finishEntry).
func (n *Node) downDue(e fsm.QueueEntry, back time.Time) int64 {
	due := max(time.Now().Add(n.backoff(e.Attempts)).UnixMilli(), back.UnixMilli())
	return min(due, e.Created+n.cfg.Queue.Lifetime.Milliseconds())
}
