package node

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// Collection of unreferenced bodies (expunged, POP3-deleted, mailbox or
// folder removed). The leader drives it; the protocol and why it is safe
// against a delivery of the same content are in fsm/gc.go.

// GC defaults.
const (
	DefaultGCInterval = time.Minute
	// DefaultGCIdle is how long a copy must have gone unwritten before
	// collection may delete it. It must exceed the longest a delivery can
	// take from writing a body to committing it (replica timeout plus
	// commit retry window, about 35 s).
	DefaultGCIdle = 5 * time.Minute
	gcBatch       = 500
)

// GC verdicts of one node for one body.
const (
	gcDeleted = "deleted" // the copy is gone now
	gcAbsent  = "absent"  // there was no copy
	gcBusy    = "busy"    // a copy was written recently: try again later
	gcRevived = "revived" // the body is referenced again: stop
)

type gcReply struct {
	Verdict string `json:"verdict"`
	Freed   int64  `json:"freed"`
}

// gcLocal deletes this node's copy of a body under tombstone collect, if
// this node's own state still shows that tombstone after the read barrier.
func (n *Node) gcLocal(ctx context.Context, hash string, collect uint64) (gcReply, error) {
	h, err := storage.ParseHash(hash)
	if err != nil {
		return gcReply{}, err
	}
	if err := n.readBarrier(ctx); err != nil {
		return gcReply{}, err
	}
	b, err := n.state.Body(hash)
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		return gcReply{Verdict: gcRevived}, nil // forgotten already; the orphan sweep owns any copy
	case err != nil:
		return gcReply{}, err
	case b.Refs > 0 || b.Collecting != collect:
		return gcReply{Verdict: gcRevived}, nil
	}
	has, _, err := n.bodies.Has(ctx, h)
	if err != nil || !has {
		return gcReply{Verdict: gcAbsent}, err
	}
	deleted, freed, err := n.bodies.DeleteIfIdle(ctx, h, n.cfg.GCIdle)
	if err != nil || !deleted {
		return gcReply{Verdict: gcBusy}, err
	}
	return gcReply{Verdict: gcDeleted, Freed: freed}, nil
}

func (n *Node) handleGC(w http.ResponseWriter, r *http.Request) {
	collect, err := strconv.ParseUint(r.URL.Query().Get("collect"), 10, 64)
	if err != nil {
		writeRPC(w, nil, fmt.Errorf("collect: %w", err))
		return
	}
	rep, err := n.gcLocal(r.Context(), r.PathValue("hash"), collect)
	writeRPC(w, rep, err)
}

// gcRemote asks member m to delete its copy.
func (n *Node) gcRemote(ctx context.Context, m fsm.Member, hash string, collect uint64) (gcReply, error) {
	if m.ID == n.cfg.ID {
		return n.gcLocal(ctx, hash, collect)
	}
	path := "/rpc/gc/" + hash + "?" + url.Values{"collect": {fmt.Sprint(collect)}}.Encode()
	var rep gcReply
	err := n.upkeepCall(ctx, 0, m, "POST", path, nil, &rep)
	return rep, err
}

// GCRound is what one collection round did.
type GCRound struct {
	Bodies int   `json:"bodies"`      // body records forgotten
	Freed  int64 `json:"freed_bytes"` // bytes freed over all members
}

// CollectGarbageOnLeader runs a collection round on the leader from any
// node: a follower asks the leader over the cluster RPC, since the CLI's
// `storage gc` may reach any node.
func (n *Node) CollectGarbageOnLeader(ctx context.Context) (GCRound, error) {
	var r GCRound
	err := n.onLeader(ctx, func() error {
		var err error
		r.Bodies, r.Freed, err = n.CollectGarbage(ctx)
		return err
	}, func(addr string) error {
		return n.call(ctx, addr, "POST", "/rpc/collect", nil, &r)
	})
	return r, err
}

func (n *Node) handleCollect(w http.ResponseWriter, r *http.Request) {
	var res GCRound
	var err error
	res.Bodies, res.Freed, err = n.CollectGarbage(r.Context())
	writeRPC(w, res, err)
}

// CollectGarbage runs one collection round on the leader: every body
// without references is tombstoned, its copies deleted on every member
// that answers, and its record forgotten once every listed replica
// confirmed. It returns the bodies forgotten and the bytes freed.
func (n *Node) CollectGarbage(ctx context.Context) (int, int64, error) {
	if !n.IsLeader() {
		return 0, 0, ErrNotLeader
	}
	var bodies int
	var freed int64
	after := ""
	for {
		hashes, err := n.state.ZeroRefBodies(after, gcBatch)
		if err != nil || len(hashes) == 0 {
			return bodies, freed, err
		}
		for _, h := range hashes {
			done, f, err := n.collectOne(ctx, h)
			if err != nil {
				return bodies, freed, err
			}
			freed += f
			if done {
				bodies++
			}
		}
		after = hashes[len(hashes)-1]
	}
}

func (n *Node) collectOne(ctx context.Context, hash string) (bool, int64, error) {
	// A body tombstoned in an earlier round (a member did not answer)
	// keeps its tombstone: no new raft entry for it.
	var res fsm.CollectResult
	if b, err := n.state.Body(hash); err == nil && b.Collecting != 0 && b.Refs <= 0 {
		res = fsm.CollectResult{Collect: b.Collecting, Replicas: b.Replicas}
	} else if err := n.applyAccess(ctx, &fsm.BodyCollect{Hash: hash}, &res); err != nil || res.Collect == 0 {
		return false, 0, err
	}
	live, err := n.liveness()
	if err != nil {
		return false, 0, err
	}
	members := slices.Collect(maps.Values(live.members))
	// Every member at once: one that does not answer costs the round its
	// call's timeout once, not once per member. A member down past the
	// repair grace is not asked at all: a paused one would cost that
	// timeout (5 s to a minute) for every body of every round, and hold all
	// collection meanwhile. A body listed on it waits for it, as it
	// would after the timeout; its unlisted copies are the orphan sweep's.
	replies := make([]gcReply, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if !live.alive[m.ID] {
			errs[i] = errMemberDown
			continue
		}
		wg.Go(func() { replies[i], errs[i] = n.gcRemote(ctx, m, hash, res.Collect) })
	}
	wg.Wait()
	isMember := map[string]bool{}
	confirmed := map[string]bool{}
	var freed int64
	revived := false
	for i, m := range members {
		isMember[m.ID] = true
		if errs[i] != nil {
			n.log.Debug("gc: member did not answer", "member", m.ID, "body", hash, "err", errs[i])
			continue
		}
		freed += replies[i].Freed
		switch replies[i].Verdict {
		case gcRevived:
			revived = true
		case gcDeleted, gcAbsent:
			confirmed[m.ID] = true
		}
	}
	if revived {
		return false, freed, nil
	}
	// Every listed replica that is still a member must have deleted its
	// copy (a removed node's copies left with it).
	for _, id := range res.Replicas {
		if isMember[id] && !confirmed[id] {
			return false, freed, nil // next round
		}
	}
	var gone bool
	err = n.applyAccess(ctx, &fsm.BodyForget{Hash: hash, Collect: res.Collect}, &gone)
	return gone, freed, err
}

// errMemberDown: a member down past the repair grace, not asked.
var errMemberDown = errors.New("member down past the repair grace")

// gcLoop runs CollectGarbage every interval while this node leads.
func (n *Node) gcLoop(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		if !n.IsLeader() {
			return
		}
		bodies, freed, err := n.CollectGarbage(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("garbage collection round failed", "err", err)
		}
		n.metrics.gcBodies.Add(float64(bodies))
		n.metrics.gcBytes.Add(float64(freed))
		if bodies > 0 || freed > 0 {
			n.log.Info("collected unreferenced bodies", "bodies", bodies, "bytes_freed", freed)
		}
	})
}
