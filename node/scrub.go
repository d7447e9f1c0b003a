package node

import (
	"context"
	"errors"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// Scrub. Every node re-reads its bodies in the background, at a byte
// rate that leaves the disk to mail, and verifies every chunk. A corrupt
// copy is reported: this node stops being listed as a replica (unless it
// is the last one listed, which the directory refuses), its copy goes,
// and the leader's next repair round copies the body from a good replica
// to a node chosen by placement. A read that meets corruption takes the
// same path.

// Scrub defaults.
const (
	DefaultScrubInterval = 24 * time.Hour
	DefaultScrubRate     = 8 << 20 // bytes/s
)

// Scrub verifies every local body once and returns how many it checked
// and how many were corrupt.
func (n *Node) Scrub(ctx context.Context) (checked, corrupt int, err error) {
	for info, err := range n.bodies.Bodies(ctx, storage.Hash{}) {
		if err != nil {
			if errors.Is(err, storage.ErrCorrupt) {
				corrupt++
				n.reportCorruptEntry(ctx, info.Hash)
				continue
			}
			return checked, corrupt, err
		}
		if err := n.scrubLimiter.wait(ctx, info.Size); err != nil {
			return checked, corrupt, err
		}
		checked++
		verr := n.bodies.Verify(ctx, info.Hash)
		switch {
		case errors.Is(verr, storage.ErrCorrupt):
			corrupt++
			n.reportCorrupt(ctx, info.Hash)
		case errors.Is(verr, storage.ErrNotFound): // deleted meanwhile
		case verr != nil:
			return checked, corrupt, verr
		}
	}
	return checked, corrupt, nil
}

// reportCorrupt handles a corrupt local copy of h: it is counted, no
// longer listed here (if another replica is), and deleted.
func (n *Node) reportCorrupt(ctx context.Context, h storage.Hash) {
	n.corrupt.Add(1)
	n.log.Error("corrupt body replica", "body", h.String())
	listed, err := n.listedHere(h)
	if err != nil {
		n.log.Warn("corrupt replica: directory read failed", "body", h.String(), "err", err)
		return
	}
	if listed {
		err := n.applyAccess(ctx, &fsm.BodyPlace{Hash: h.String(), Remove: []string{n.cfg.ID}}, nil)
		if err != nil {
			// The last listed replica stays listed: nothing better exists.
			n.log.Error("corrupt replica stays listed", "body", h.String(), "err", err)
			return
		}
	}
	// Verified again under the body's lock: a good copy written since the
	// verdict (a delivery, a repair, another reader's fetch) stays.
	if _, err := n.bodies.DeleteIfCorrupt(ctx, h); err != nil {
		n.log.Warn("corrupt replica not deleted", "body", h.String(), "err", err)
	}
	n.kickRepairAnywhere()
}

// reportCorruptEntry is reportCorrupt for an entry of the store's listing
// whose manifest does not decode; a key too damaged to name its body (the
// zero hash) can only be counted.
func (n *Node) reportCorruptEntry(ctx context.Context, h storage.Hash) {
	if h == (storage.Hash{}) {
		n.corrupt.Add(1)
		n.log.Error("corrupt body listing entry with no readable hash")
		return
	}
	n.reportCorrupt(ctx, h)
}

// The repair kick. A node that unlists a corrupt or missing copy of its
// own asks the leader for a repair round at once, rather than leaving
// the body short until the next periodic one. The kick is best effort:
// the unlisting moved the placement mark, so the next periodic round
// scans and finds the body anyway. So it is sent in the background, and
// never holds the scrub or the audit that asked for it: a leader paused
// right then (a stopped process keeps its connections open, and the
// kick's request would wait on a pooled one for ever) would otherwise
// stop this node checking its other bodies until it resumed or died. A
// timeout alone would still hold the scrub that long for every corrupt
// copy it meets. One kick is in flight at a time; those asked for
// meanwhile are sent once after it, and each gives up after
// repairKickTimeout, so that a leader that never answers (or has been
// replaced) does not hold the later ones.

// repairKickTimeout bounds one kick, which only queues a round on the
// leader and answers at once.
const repairKickTimeout = 5 * time.Second

// kickRepairAnywhere starts a repair round on the leader soon, without
// waiting for it; best effort.
func (n *Node) kickRepairAnywhere() {
	if n.IsLeader() {
		n.kickRepair()
		return
	}
	select {
	case n.leaderKick <- struct{}{}:
	default: // one is pending already, and goes after this request
	}
}

// kickLoop sends the kicks kickRepairAnywhere asks for, one at a time,
// until ctx ends.
func (n *Node) kickLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.leaderKick:
		}
		if err := n.kickRepairOnLeader(ctx); err != nil && ctx.Err() == nil {
			n.log.Info("repair kick not delivered; the leader's next round repairs", "err", err)
		}
	}
}

// kickRepairOnLeader asks the leader for a repair round soon, within
// repairKickTimeout, and says whether it heard.
func (n *Node) kickRepairOnLeader(ctx context.Context) error {
	if n.IsLeader() {
		n.kickRepair()
		return nil
	}
	addr, err := n.leaderAddr()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, repairKickTimeout)
	defer cancel()
	return n.call(ctx, addr, "POST", "/rpc/repair", nil, nil)
}

// scrubLoop scrubs every interval until ctx ends.
func (n *Node) scrubLoop(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() { n.scrubPass(ctx) })
}

// scrubPass audits the listings, verifies every local body, and then
// reclaims the chunks of copies deleted while their manifest did not
// decode, which such a pass deletes.
func (n *Node) scrubPass(ctx context.Context) {
	if _, _, err := n.AuditListings(ctx); err != nil && ctx.Err() == nil {
		n.log.Warn("listing audit failed", "err", err)
	}
	checked, corrupt, err := n.Scrub(ctx)
	if err != nil && ctx.Err() == nil {
		n.log.Warn("scrub failed", "err", err)
	}
	n.log.Info("scrub pass done", "checked", checked, "corrupt", corrupt)
	if _, err := n.bodies.ReclaimLostChunks(ctx); err != nil && ctx.Err() == nil {
		n.log.Warn("reclaim of lost chunks failed", "err", err)
	}
}
