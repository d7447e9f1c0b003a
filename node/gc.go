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

// SweepOrphans deletes this node's unreferenced bodies older than grace
// and returns how many it deleted and how many bytes that freed.
func (n *Node) SweepOrphans(ctx context.Context, grace time.Duration) (int, int64, error) {
	// Read the directory as of now, so a body committed through another
	// node a moment ago is known here.
	if err := n.Barrier(ctx); err != nil {
		return 0, 0, err
	}
	cutoff := time.Now().Add(-grace)
	var doomed []storage.BodyInfo
	for info, err := range n.bodies.Bodies(ctx, storage.Hash{}) {
		if errors.Is(err, storage.ErrCorrupt) {
			// Its age is unknown; it is the scrub's, whatever the sweep does.
			n.reportCorruptEntry(ctx, info.Hash)
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if info.Written.After(cutoff) {
			continue
		}
		held, err := n.listedHere(info.Hash)
		if err != nil {
			return 0, 0, err
		}
		if !held {
			doomed = append(doomed, info)
		}
	}
	var freed int64
	deleted := 0
	for _, info := range doomed {
		// Listed since the scan (a long list takes a while to delete)?
		held, err := n.listedHere(info.Hash)
		if err != nil {
			return deleted, freed, err
		}
		if held {
			continue
		}
		// A delivery may be writing this content again right now: a copy
		// written within the grace period stays (storage.DeleteIfIdle).
		ok, size, err := n.bodies.DeleteIfIdle(ctx, info.Hash, grace)
		if err != nil {
			return deleted, freed, err
		}
		if ok {
			deleted++
			freed += size
		}
	}
	if deleted > 0 {
		n.log.Info("deleted orphan bodies", "count", deleted, "bytes", freed)
	}
	return deleted, freed, nil
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
