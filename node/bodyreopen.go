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
// as long each time a try fails, up to maxReopenBackoff intervals. The
// store refuses to reopen while its filesystem has less than the reserve
// free (--min-free-space), so a disk that is still full costs one statfs
// per try. Everything else comes back by itself once Failed is nil:
// readiness and the failed metric read it, CheckSpace lets SMTP's MAIL
// through again, and peers place copies here again once their next poll
// of /rpc/storage succeeds (its penalty, peerPenalty, runs out).

// maxReopenBackoff bounds the wait between two tries, in intervals.
const maxReopenBackoff = 8

// reopenNoticeMax bounds how long a failure goes unnoticed by the loop
// (it polls Failed, an atomic load).
const reopenNoticeMax = time.Second

// minReopenTimeout is the least time a try may take: waiting for the
// store's operations under way to end, then Pebble's replay of its log.
// A try gets one interval, or this if longer.
const minReopenTimeout = 5 * time.Second

// reopenLoop reopens the body store after it failed, until ctx ends. A
// non-positive interval turns it off.
func (n *Node) reopenLoop(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(max(min(interval/4, reopenNoticeMax), time.Millisecond))
	defer t.Stop()
	var due time.Time // of the next try; zero while the store works
	backoff, attempt := interval, 0
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
			due, backoff, attempt = time.Time{}, interval, 0
		case due.IsZero():
			due = now.Add(interval)
			n.log.Warn("body store failed; will try to reopen it", "cause", cause, "in", interval)
		case !now.Before(due):
			attempt++
			if n.reopenBodies(ctx, attempt, max(interval, minReopenTimeout)) {
				due, backoff, attempt = time.Time{}, interval, 0
				continue
			}
			backoff = min(2*backoff, maxReopenBackoff*interval)
			due = time.Now().Add(backoff)
			n.log.Warn("body store stays failed", "attempt", attempt, "next_try_in", backoff)
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
