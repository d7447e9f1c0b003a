package frontend

import (
	"sync"
	"time"
)

// checkCost remembers the slowest password check of the last
// checkCostWindow, successes included. A failure is held at least that
// long after its check began (holdFailure), so that a mailbox whose hash
// is slower than FailureDelay (an imported bcrypt of cost 13 or 14) does
// not show itself by the time its failures take: once any such check has
// run, a failure for an unknown address takes as long. The floor is
// capped (maxCheckCost), so one pathological check cannot slow every
// failure without bound.
type checkCost struct {
	mu   sync.Mutex
	max  time.Duration
	seen time.Time
}

const (
	checkCostWindow = 10 * time.Minute
	maxCheckCost    = 3 * time.Second
)

// note records one check's duration d, ended at now.
func (c *checkCost) note(d time.Duration, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d >= c.max || now.Sub(c.seen) > checkCostWindow {
		c.max, c.seen = min(d, maxCheckCost), now
	}
}

// slowest is the slowest check still remembered at now.
func (c *checkCost) slowest(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.seen) > checkCostWindow {
		return 0
	}
	return c.max
}
