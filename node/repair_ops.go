package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// trim removes extra replicas of a body whose every replica is healthy:
// the copies that stay are verified first, the fullest nodes give theirs
// up, the record changes, and only then are the dropped copies deleted.
// The verification reads every kept copy whole, so it takes a slot of
// the copy gate and its bytes from the repair rate, as a copy does: a
// lowered R trims every body, and must not read the whole store at disk
// speed while mail waits.
func (n *Node) trim(ctx context.Context, live liveness, rec fsm.BodyRecord, extra int) error {
	ids := slices.Clone(rec.Replicas)
	slices.SortFunc(ids, func(a, b string) int { return compareFree(n.freeBytes(b), n.freeBytes(a)) })
	keep, drop := ids[:len(ids)-extra], ids[len(ids)-extra:]
	if ok, err := n.verifyKept(ctx, live, rec, keep); !ok || err != nil {
		return err
	}
	if ok, err := n.unlistKeeping(ctx, rec.Hash, keep, drop, rec.Replicas); !ok || err != nil {
		return err
	}
	for _, id := range drop {
		if err := n.dropOn(ctx, live.members[id], rec.Hash); err != nil {
			n.log.Info("dropped replica not deleted yet; the orphan sweep will", "body", rec.Hash, "node", id, "err", err)
		}
	}
	n.repair.update(func(s *RepairStatus) { s.Trimmed += int64(extra) })
	return nil
}

// unlistKeeping unlists drop from a body, on condition that it is still
// listed on exactly seen (nil: whatever its listing), and reports
// whether it did and the change stands. The copies on keep must be on
// members: a round's liveness is read when it starts, and a trim after R
// was lowered can run for minutes, so a node kept may have been removed
// since, its removal's checks passing while the copies dropped here were
// still listed; keeping the body on it alone would lose it (repair
// copies only from members). BodyPlace checks the members it adds, not
// those it leaves, so this looks before the change and again after it:
// a removal committed in between is seen by the second look, and the
// dropped copies, not deleted yet, are listed again; one committed after
// the change is refused by the removal's own second look
// (membership.go), which sees the new listing.
func (n *Node) unlistKeeping(ctx context.Context, hash string, keep, drop, seen []string) (bool, error) {
	if ok, err := n.keptOnMembers(hash, keep); !ok || err != nil {
		return false, err
	}
	if n.beforeUnlist != nil {
		n.beforeUnlist(keep, drop)
	}
	if err := n.place(ctx, hash, nil, drop, seen); err != nil {
		if errors.Is(err, errNotPlaced) {
			return false, nil // still listed: keep them
		}
		return false, err
	}
	if ok, err := n.keptOnMembers(hash, keep); !ok || err != nil {
		n.relist(ctx, hash, drop)
		return false, err
	}
	return true, nil
}

// keptOnMembers reports whether every node in keep is a member now.
func (n *Node) keptOnMembers(hash string, keep []string) (bool, error) {
	ms, err := n.state.Members()
	if err != nil {
		return false, err
	}
	for _, id := range keep {
		if !slices.ContainsFunc(ms, func(m fsm.Member) bool { return m.ID == id }) {
			n.log.Warn("not unlisting copies: a replica kept is no longer a member", "body", hash, "node", id)
			return false, nil
		}
	}
	return true, nil
}

// relist lists again the copies unlistKeeping unlisted but nobody has
// deleted, because a kept one turned out to be on a node removed
// meanwhile.
func (n *Node) relist(ctx context.Context, hash string, drop []string) {
	if err := n.place(ctx, hash, drop, nil, nil); err != nil {
		n.log.Error("unlisted copies not listed again after a kept replica's node was removed; the orphan sweep may delete them",
			"body", hash, "nodes", drop, "err", err)
	}
}

// verifyKept reads back the copies a trim keeps, holding a slot of the
// copy gate only while it reads (not while the dropped copies are
// deleted, which a paused member can make last a minute). It reports
// whether every one verified; only a cancelled context is an error.
func (n *Node) verifyKept(ctx context.Context, live liveness, rec fsm.BodyRecord, keep []string) (bool, error) {
	release, err := n.copies.acquire(ctx, rec.Size)
	if err != nil {
		return false, err
	}
	defer release()
	if err := n.limiter.wait(ctx, rec.Size*int64(len(keep))); err != nil {
		return false, err
	}
	for _, id := range keep {
		if err := n.verifyOn(ctx, live.members[id], rec.Hash); err != nil {
			n.log.Warn("not trimming: a kept replica did not verify", "body", rec.Hash, "node", id, "err", err)
			return false, nil
		}
	}
	return true, nil
}

func compareFree(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// freeBytes is a member's room for new bodies (free space above its
// reserve) as last seen (this node: now).
func (n *Node) freeBytes(id string) uint64 {
	if id == n.cfg.ID {
		st, _ := n.bodies.Stats(context.Background())
		return st.Room()
	}
	f, _ := n.placement.free(id)
	return f
}

func (n *Node) verifyOn(ctx context.Context, m fsm.Member, hash string) error {
	if m.ID == n.cfg.ID {
		return n.verifyLocal(ctx, hash)
	}
	return n.upkeepCall(ctx, 0, m, "GET", "/rpc/verify/"+hash, nil, nil)
}

// verifyLocal verifies this node's copy of a body. A corrupt copy is
// reported in the background (unlisted, deleted, repaired from a good
// one: scrub.go), wherever the check came from: a peer's /rpc/verify, or
// this node's own `storage verify` or trim. Left alone, it would stay
// listed, and fail every such check, until the next scrub.
func (n *Node) verifyLocal(ctx context.Context, hash string) error {
	h, err := storage.ParseHash(hash)
	if err != nil {
		return err
	}
	err = n.bodies.Verify(ctx, h)
	if errors.Is(err, storage.ErrCorrupt) {
		n.spawn(func(ctx context.Context) { n.reportCorrupt(ctx, h) })
	}
	return err
}

func (n *Node) dropOn(ctx context.Context, m fsm.Member, hash string) error {
	if m.ID == n.cfg.ID {
		return n.dropLocal(ctx, hash)
	}
	return n.upkeepCall(ctx, 0, m, "POST", "/rpc/drop/"+hash, nil, nil)
}

// errStillListed refuses to drop a copy the directory still lists here.
var errStillListed = errors.New("copy is listed as a replica here")

// dropLocal deletes this node's copy of a body that the directory no
// longer lists here, unless a write touched it recently (a delivery of
// the same content may be about to list it again).
func (n *Node) dropLocal(ctx context.Context, hash string) error {
	h, err := storage.ParseHash(hash)
	if err != nil {
		return err
	}
	if err := n.readBarrier(ctx); err != nil {
		return err
	}
	if listed, err := n.listedHere(h); err != nil || listed {
		return errors.Join(err, errStillListed)
	}
	_, _, err = n.bodies.DeleteIfIdle(ctx, h, n.cfg.GCIdle)
	return err
}

// rebalance moves bodies from the fullest live member to the emptiest
// one with room (by bytes, or by the share of each disk: rebalance_plan.go)
// until they are within RebalanceSpread of the fullest, or until the
// deadline; the next round goes on. Only bodies with at least r listed
// replicas move: a short one is repair's.
func (n *Node) rebalance(ctx context.Context, live liveness, r int, deadline time.Time) error {
	var ids []string
	for id := range live.members {
		if live.alive[id] {
			ids = append(ids, id)
		}
	}
	plan, ok := planRebalance(n.memberLoads(ids), n.cfg.RebalanceSpread)
	if !ok {
		return nil
	}
	full, empty := plan.from, plan.to
	var moved int64
	for after := ""; moved < plan.amount; {
		recs, err := n.state.Bodies(after, repairScanBatch)
		if err != nil || len(recs) == 0 {
			return err
		}
		after = recs[len(recs)-1].Hash
		for _, rec := range recs {
			if moved >= plan.amount || time.Now().After(deadline) || !n.IsLeader() {
				return nil
			}
			if rec.Refs <= 0 || rec.Collecting != 0 || len(rec.Replicas) < r || !slices.Contains(rec.Replicas, full) ||
				slices.Contains(rec.Replicas, empty) || rec.Size >= 2*(plan.amount-moved) {
				// Only a body smaller than twice what is left to move
				// narrows the gap; a larger one swaps which node is
				// fullest, and the next round would move it back.
				continue
			}
			err := n.move(ctx, live, rec, full, empty)
			if errors.Is(err, errMoot) {
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				n.log.Warn("rebalance move failed", "body", rec.Hash, "from", full, "to", empty, "err", err)
				return nil
			}
			moved += rec.Size
		}
	}
	return nil
}

func (n *Node) move(ctx context.Context, live liveness, rec fsm.BodyRecord, from, to string) error {
	cur, release, err := n.copyTurn(ctx, rec)
	if err != nil {
		return err
	}
	defer release()
	if !slices.Contains(cur.Replicas, from) || slices.Contains(cur.Replicas, to) {
		return errMoot
	}
	var sources []string
	for _, id := range append([]string{from}, rec.Replicas...) {
		if live.alive[id] {
			sources = append(sources, live.members[id].ClusterAddr)
		}
	}
	if err := n.fetchOn(ctx, live.members[to], rec.Hash, rec.Size, sources); err != nil {
		return err
	}
	if err := n.place(ctx, rec.Hash, []string{to}, []string{from}, cur.Replicas); err != nil {
		if errors.Is(err, errNotPlaced) {
			return errMoot // from is still listed, so its copy stays
		}
		return err
	}
	if err := n.dropOn(ctx, live.members[from], rec.Hash); err != nil {
		n.log.Info("moved replica not deleted yet; the orphan sweep will", "body", rec.Hash, "node", from, "err", err)
	}
	n.repair.update(func(s *RepairStatus) { s.Moved++ })
	return nil
}

// errMoot: a copy that was no longer needed once its turn came.
var errMoot = errors.New("body changed while the copy waited; skipped")

// copyTurn waits for a slot of the copy gate and the rate limit, then
// re-reads rec: the wait can last seconds, and a body collected meanwhile
// must not get a new copy (collection deletes only the copies it listed,
// so the new one would be left behind). It returns the current record
// (the caller checks that its copy is still needed) and the slot's
// release, or errMoot.
func (n *Node) copyTurn(ctx context.Context, rec fsm.BodyRecord) (fsm.BodyRecord, func(), error) {
	release, err := n.copies.acquire(ctx, rec.Size)
	if err != nil {
		return rec, nil, err
	}
	if err := n.limiter.wait(ctx, rec.Size); err != nil {
		release()
		return rec, nil, err
	}
	b, err := n.state.Body(rec.Hash)
	if err != nil || b.Refs <= 0 || b.Collecting != 0 {
		release()
		return rec, nil, errMoot
	}
	return fsm.BodyRecord{Hash: rec.Hash, Body: b}, release, nil
}

// byteLimiter spaces work so that it averages rate bytes per second.
type byteLimiter struct {
	mu   sync.Mutex
	rate int64
	next time.Time
}

func (l *byteLimiter) wait(ctx context.Context, bytes int64) error {
	l.mu.Lock()
	now := time.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(time.Duration(float64(bytes) / float64(max(l.rate, 1)) * float64(time.Second)))
	l.mu.Unlock()
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// repairLoop runs RepairRound every interval, or at once when kicked
// (a node was removed), while this node leads.
func (n *Node) repairLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var periodic bool // a timer's round, not a kick's
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			periodic = true
		case <-n.repairKick:
			periodic = false
		}
		if !n.IsLeader() {
			continue
		}
		if _, err := n.repairRound(ctx, periodic); err != nil && ctx.Err() == nil && !errors.Is(err, ErrNotLeader) {
			n.log.Warn("repair round failed", "err", err)
		}
	}
}

// kickRepair starts a repair round soon, without waiting for the timer.
func (n *Node) kickRepair() {
	select {
	case n.repairKick <- struct{}{}:
	default:
	}
}

func (n *Node) repairRPC(mux *http.ServeMux) {
	mux.HandleFunc("POST /rpc/fetch/{hash}", func(w http.ResponseWriter, r *http.Request) {
		var req fetchRequest
		if err := decodeBody(r, &req); err != nil {
			writeRPC(w, nil, err)
			return
		}
		writeRPC(w, nil, n.fetchFrom(r.Context(), r.PathValue("hash"), req.Sources))
	})
	mux.HandleFunc("GET /rpc/verify/{hash}", func(w http.ResponseWriter, r *http.Request) {
		writeRPC(w, nil, n.verifyLocal(r.Context(), r.PathValue("hash")))
	})
	mux.HandleFunc("POST /rpc/drop/{hash}", func(w http.ResponseWriter, r *http.Request) {
		writeRPC(w, nil, n.dropLocal(r.Context(), r.PathValue("hash")))
	})
}

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are passed
	}
	return raw
}
