package node

import (
	"context"
	"errors"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// Orphan collection. A body is written to its replicas before the raft
// entry that references it commits; if that commit never happens (the
// sender went away, no quorum, a crash), the copies are orphans. Each node
// sweeps its own store and deletes bodies that are older than the grace
// period and that the directory does not list on this node. The grace
// period must exceed the longest a delivery can take between writing its
// body and committing, so an in-flight delivery is never robbed.
//
// Bodies whose references were all dropped (expunge) are not touched
// here: deleting every copy of those is the leader's job (bodygc.go).

// DefaultOrphanGrace is how old an unreferenced body must be to go.
const DefaultOrphanGrace = time.Hour

// sweepBatch is how many doomed bodies the orphan sweep collects before
// it deletes them and scans on: a node removed and joined again without
// a wipe can hold millions of unlisted bodies, and a list of all of them
// would take memory in proportion (64 bytes each).
const sweepBatch = 1024

// SweepOrphans deletes this node's unreferenced bodies older than grace
// and returns how many it deleted and how many bytes that freed.
func (n *Node) SweepOrphans(ctx context.Context, grace time.Duration) (int, int64, error) {
	// Read the directory as of now, so a body committed through another
	// node a moment ago is known here.
	if err := n.Barrier(ctx); err != nil {
		return 0, 0, err
	}
	cutoff := time.Now().Add(-grace)
	var sw orphanSweep
	doomed := make([]storage.Hash, 0, sweepBatch)
	for info, err := range n.bodies.Bodies(ctx, storage.Hash{}) {
		if errors.Is(err, storage.ErrCorrupt) {
			// Its age is unknown; it is the scrub's, whatever the sweep does.
			n.reportCorruptEntry(ctx, info.Hash)
			continue
		}
		if err != nil {
			return sw.deleted, sw.freed, err
		}
		if info.Written.After(cutoff) {
			continue
		}
		held, err := n.listedHere(info.Hash)
		if err != nil {
			return sw.deleted, sw.freed, err
		}
		if held {
			continue
		}
		if doomed = append(doomed, info.Hash); len(doomed) == sweepBatch {
			if err := n.sweepDoomed(ctx, &sw, doomed, grace); err != nil {
				return sw.deleted, sw.freed, err
			}
			doomed = doomed[:0]
		}
	}
	if err := n.sweepDoomed(ctx, &sw, doomed, grace); err != nil {
		return sw.deleted, sw.freed, err
	}
	if sw.deleted > 0 {
		n.log.Info("deleted orphan bodies", "count", sw.deleted, "bytes", sw.freed)
	}
	return sw.deleted, sw.freed, nil
}

// orphanSweep counts what a sweep deleted.
type orphanSweep struct {
	deleted int
	freed   int64
}

// sweepDoomed deletes the bodies the sweep found unlisted, unless listed
// or written since.
func (n *Node) sweepDoomed(ctx context.Context, sw *orphanSweep, doomed []storage.Hash, grace time.Duration) error {
	for _, h := range doomed {
		// Listed since the scan (a long list takes a while to delete)?
		held, err := n.listedHere(h)
		if err != nil {
			return err
		}
		if held {
			continue
		}
		// A delivery may be writing this content again right now: a copy
		// written within the grace period stays (storage.DeleteIfIdle).
		ok, size, err := n.bodies.DeleteIfIdle(ctx, h, grace)
		if err != nil {
			return err
		}
		if ok {
			sw.deleted++
			sw.freed += size
		}
	}
	return nil
}

// listedHere reports whether the directory names this node as a replica
// of h.
func (n *Node) listedHere(h storage.Hash) (bool, error) {
	b, err := n.state.Body(h.String())
	if errors.Is(err, fsm.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, id := range b.Replicas {
		if id == n.cfg.ID {
			return true, nil
		}
	}
	return false, nil
}

// sweepLoop runs SweepOrphans every interval until ctx ends.
func (n *Node) sweepLoop(ctx context.Context, interval, grace time.Duration) {
	every(ctx, interval, func() {
		if _, _, err := n.SweepOrphans(ctx, grace); err != nil && ctx.Err() == nil {
			n.log.Warn("orphan sweep failed", "err", err)
		}
	})
}

// every calls f every interval until ctx ends.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
