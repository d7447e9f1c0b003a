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
//
// It keeps the slowest check of each span of the window, not one peak
// with its time: a peak alone is forgotten a window after it even while
// checks just below it go on, and the floor would then drop to the next
// probe's own cost, showing a slow hash to it.
type checkCost struct {
	mu    sync.Mutex
	base  time.Time                    // the first check noted; spans count from it
	spans [checkCostSpans + 1]costSpan // by span number, modulo their count
}

// costSpan is the slowest check noted in one span.
type costSpan struct {
	n   int64 // the span's number, counted from base
	max time.Duration
}

const (
	checkCostWindow = 10 * time.Minute
	checkCostSpans  = 10 // the window's spans; one more is the current one
	maxCheckCost    = 3 * time.Second
)

// span is the number of the span now falls in. c.mu is held.
func (c *checkCost) span(now time.Time) int64 {
	return max(int64(now.Sub(c.base)/(checkCostWindow/checkCostSpans)), 0)
}

// note records one check's duration d, ended at now.
func (c *checkCost) note(d time.Duration, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base.IsZero() {
		c.base = now
	}
	n := c.span(now)
	s := &c.spans[n%int64(len(c.spans))]
	if s.n != n {
		*s = costSpan{n: n}
	}
	s.max = max(s.max, min(d, maxCheckCost))
}

// slowest is the slowest check of the last checkCostWindow at now (of
// up to one span more).
func (c *checkCost) slowest(now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base.IsZero() {
		return 0
	}
	n := c.span(now)
	var slowest time.Duration
	for _, s := range c.spans {
		if s.n <= n && n-s.n <= checkCostSpans {
			slowest = max(slowest, s.max)
		}
	}
	return slowest
}
