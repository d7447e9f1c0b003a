package node

import (
	"context"
	"time"
)

// Reopening a failed body store. A failed write or fsync (a full disk,
// an I/O error) fails the store (storage.ErrFailed): the node refuses
// deliveries, reads its mail from other replicas and says it is not
// ready. An operator who frees space expects it back without a restart,
// so the node tries storage.Store.Reopen itself: first
// BodyStoreReopenInterval after it noticed the failure, then after twice
// as long each time a try fails, up to maxReopenBackoff intervals (a
// reopen after which the store fails again within reopenStableFor
// intervals counts as a failed try). The
// store refuses to reopen while its filesystem has less than the reserve
// free (--min-free-space), so a disk that is still full costs one statfs
// per try. Everything else comes back by itself once Failed is nil:
// readiness and the failed metric read it, CheckSpace lets SMTP's MAIL
// through again, and peers place copies here again once their next poll
// of /rpc/storage succeeds (its penalty, peerPenalty, runs out).

// maxReopenBackoff bounds the wait between two tries, in intervals.
const maxReopenBackoff = 8

// reopenStableFor is how long, in intervals, a reopened store must work
// before its next failure counts as a new one and is tried again after
// one interval. A store that fails again sooner (a device that fails
// every write, a disk that fills again at once) only had a try that did
// not help: its waits keep growing, so that readiness, the failed metric
// and the peers' placement do not flap once per interval, each flap
// costing the deliveries in flight.
const reopenStableFor = maxReopenBackoff

// reopenNoticeMax bounds how long a failure goes unnoticed by the loop
// (it polls Failed, an atomic load).
const reopenNoticeMax = time.Second

// minReopenTimeout is the least time a try may take: waiting for the
// store's operations under way to end, then Pebble's replay of its log.
// A try gets one interval, or this if longer.
const minReopenTimeout = 5 * time.Second

// reopenBackoff is the reopen loop's schedule.
type reopenBackoff struct {
	interval time.Duration
	due      time.Time // of the next try; zero while the store works
	wait     time.Duration
	attempt  int
	reopened time.Time // of the last reopen that may not last; zero once it did
}

// working notes that the store works at now.
func (b *reopenBackoff) working(now time.Time) {
	b.due = time.Time{}
	if !b.reopened.IsZero() && now.Sub(b.reopened) >= reopenStableFor*b.interval {
		b.wait, b.attempt, b.reopened = b.interval, 0, time.Time{}
	}
}

// failed notes a failure first seen at now and schedules the first try:
// one interval later, or, when a recent reopen did not last, as if that
// reopen had been a failed try.
func (b *reopenBackoff) failed(now time.Time) time.Duration {
	if !b.reopened.IsZero() {
		b.grow()
	}
	b.due = now.Add(b.wait)
	return b.wait
}

// grow doubles the wait, up to its bound.
func (b *reopenBackoff) grow() {
	b.wait = min(2*b.wait, maxReopenBackoff*b.interval)
}

// reopenLoop reopens the body store after it failed, until ctx ends. A
// non-positive interval turns it off.
func (n *Node) reopenLoop(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(max(min(interval/4, reopenNoticeMax), time.Millisecond))
	defer t.Stop()
	b := reopenBackoff{interval: interval, wait: interval}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cause := n.bodies.Failed()
		now := time.Now()
		switch {
		case cause == nil:
			b.working(now)
		case b.due.IsZero():
			wait := b.failed(now)
			n.log.Warn("body store failed; will try to reopen it", "cause", cause, "in", wait)
		case !now.Before(b.due):
			b.attempt++
			if n.reopenBodies(ctx, b.attempt, max(interval, minReopenTimeout)) {
				b.due, b.reopened = time.Time{}, time.Now()
				continue
			}
			b.grow()
			b.due = time.Now().Add(b.wait)
			n.log.Warn("body store stays failed", "attempt", b.attempt, "next_try_in", b.wait)
		}
	}
}

// reopenBodies makes one try at reopening the failed body store and
// reports whether it works again. After a reopen the listing audit runs
// (audit.go), as at start: a body this node is listed for must be in its
// store, and one that is not is repaired from the other replicas.
func (n *Node) reopenBodies(ctx context.Context, attempt int, timeout time.Duration) bool {
	n.log.Info("reopening the failed body store", "attempt", attempt, "cause", n.bodies.Failed())
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, timeout)
	err := n.bodies.Reopen(rctx)
	cancel()
	if err != nil {
		n.log.Warn("body store reopen failed", "attempt", attempt, "err", err)
		return false
	}
	n.log.Info("body store reopened", "attempt", attempt, "took", time.Since(start).Round(time.Millisecond))
	checked, missing, err := n.AuditListings(ctx)
	if err != nil && ctx.Err() == nil {
		n.log.Warn("listing audit after the reopen failed", "err", err)
	} else if err == nil {
		n.log.Info("listing audit after the reopen done", "checked", checked, "missing", missing)
	}
	return true
}
