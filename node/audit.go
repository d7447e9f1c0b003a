package node

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// The listing audit. The directory lists, per body, the nodes holding a
// replica; repair and reads trust that list. It is true by construction
// (a node is listed only after its copy is fsynced and verified, and is
// unlisted before its copy is deleted), except when a node's store loses
// copies behind the directory's back: a node removed, wiped and joined
// again under the same ID, a replaced disk, a store restored from an old
// backup. Such a node would count as a healthy replica of bodies it does
// not have, and a body could be down to one real copy while the cluster
// believes it has R.
//
// So every node, once it has caught up after starting, and again before
// each scrub pass, walks the body records that list it and checks that
// its store holds each one. A listed body that is missing is handled like
// a corrupt copy: the node is unlisted (never the last listed replica)
// and the leader repairs the body from the others.
//
// Until its first audit has finished, a node says so in its status
// (MemberStatus.AuditPending), and a removal counts no copy on it: a
// store replaced a moment ago is listed for every body it lost, and
// removing the node with the other copy would leave a body with none.

// auditWorkers unlist missing copies at once: each is a raft commit, and
// a wiped node that re-joined can be listed for thousands of bodies.
const auditWorkers = 16

// AuditListings checks every body listed on this node against the local
// store and returns how many listings it checked and how many were
// missing here (and are now unlisted, unless they were the last).
func (n *Node) AuditListings(ctx context.Context) (checked, missing int, err error) {
	work := make(chan string)
	var lost atomic.Int64
	var wg sync.WaitGroup
	for range auditWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for hash := range work {
				if n.unlistMissing(ctx, hash) {
					lost.Add(1)
				}
			}
		}()
	}
	checked, err = n.scanListings(ctx, work)
	close(work)
	wg.Wait()
	if lost.Load() > 0 {
		n.kickRepairAnywhere() // the bodies are short now
	}
	if err == nil {
		n.audited.Store(true)
	}
	return checked, int(lost.Load()), err
}

// scanListings sends every body listed here that the store lacks to work.
func (n *Node) scanListings(ctx context.Context, work chan<- string) (int, error) {
	checked := 0
	err := n.scanBodies(ctx, func(rec fsm.BodyRecord) error {
		if !slices.Contains(rec.Replicas, n.cfg.ID) || rec.Collecting != 0 {
			return nil
		}
		checked++
		has, err := n.hasBody(ctx, rec.Hash)
		if h, perr := storage.ParseHash(rec.Hash); errors.Is(err, storage.ErrCorrupt) && perr == nil {
			n.reportCorrupt(ctx, h) // unlisted here if another copy is, and repaired
			return nil
		}
		if err != nil || has {
			return err
		}
		select {
		case work <- rec.Hash:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return checked, err
}

// hasBody reports whether the local store holds the body.
func (n *Node) hasBody(ctx context.Context, hash string) (bool, error) {
	h, err := storage.ParseHash(hash)
	if err != nil {
		return false, err
	}
	has, _, err := n.bodies.Has(ctx, h)
	return has, err
}

// unlistMissing unlists this node from a body its store lacks and
// reports whether it did. The listing is read again first, so a copy
// unlisted and deleted after the scan (trim, rebalance, collection) is
// not mistaken for a lost one.
func (n *Node) unlistMissing(ctx context.Context, hash string) bool {
	rec, err := n.state.Body(hash)
	if err != nil || rec.Collecting != 0 || !slices.Contains(rec.Replicas, n.cfg.ID) {
		return false // gone, being collected, or no longer listed here
	}
	if has, err := n.hasBody(ctx, hash); err != nil || has {
		return false // stored meanwhile, or the store cannot say
	}
	n.missing.Add(1)
	n.log.Error("body listed here is missing from the store; unlisting it", "body", hash)
	if err := n.applyAccess(ctx, &fsm.BodyPlace{Hash: hash, Remove: []string{n.cfg.ID}}, nil); err != nil {
		n.log.Error("missing replica stays listed", "body", hash, "err", err)
	}
	return true
}

// auditAtStart runs the audit once this node serves current reads.
func (n *Node) auditAtStart(ctx context.Context) {
	if n.cfg.auditHold != nil {
		select {
		case <-n.cfg.auditHold:
		case <-ctx.Done():
			return
		}
	}
	for ctx.Err() == nil {
		bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := n.Barrier(bctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	checked, missing, err := n.AuditListings(ctx)
	if err != nil && ctx.Err() == nil {
		n.log.Warn("listing audit failed", "err", err)
		return
	}
	n.log.Info("listing audit done", "checked", checked, "missing", missing)
}
