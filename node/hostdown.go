package node

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrHostDown: a destination host failed a connection attempt a short
// while ago, so this attempt did not try it again (temporary).
var ErrHostDown = errors.New("destination host failed recently; not tried again yet")

// hostHealth remembers that a destination host could not be reached, so
// that, for QueueConfig.HostDownTime, attempts skip it at once instead
// of each waiting out a dial or a greeting: many entries for one dead
// server would otherwise hold every queue worker, one timeout each, and
// stall mail for every other destination. A successful dial clears it.
type hostHealth struct {
	mu        sync.Mutex
	downUntil time.Time
	why       error
}

// down returns ErrHostDown, with the failure that marked it, while the
// host is marked down.
func (h *hostHealth) down(now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Before(h.downUntil) {
		return h.why
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
		h.downUntil = time.Time{}
		return false
	}
	if !errors.Is(err, ErrNoRoute) || d <= 0 {
		return false
	}
	fresh := !now.Before(h.downUntil)
	h.downUntil = now.Add(d)
	h.why = fmt.Errorf("%w: %s (%v)", ErrHostDown, host, err)
	return fresh
}
