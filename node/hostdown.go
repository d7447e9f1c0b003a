package node

import (
	"context"
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

// observe records a dial's result. A failure marks the host down unless
// it is this node's own doing (ctx cancelled, as at shutdown); an
// attempt's deadline passing during the dial counts against the host,
// as a server that never greets is as dead as one that refuses. It
// reports whether the host has just been marked down.
func (h *hostHealth) observe(ctx context.Context, host string, err error, now time.Time, d time.Duration) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.downUntil = time.Time{}
		return false
	}
	if !errors.Is(err, ErrNoRoute) || errors.Is(ctx.Err(), context.Canceled) || d <= 0 {
		return false
	}
	fresh := !now.Before(h.downUntil)
	h.downUntil = now.Add(d)
	h.why = fmt.Errorf("%w: %s (%v)", ErrHostDown, host, err)
	return fresh
}
