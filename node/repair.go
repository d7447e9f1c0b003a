package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// Repair keeps every referenced body on R healthy replicas. The leader
// scans the body records each round (periodic rounds skip it while
// nothing has changed since a scan that found nothing to do:
// repair_skip.go). A replica counts as healthy while
// its node is a member and has answered within RepairGrace. A body short
// of R healthy replicas is copied from a healthy one to a node chosen by
// placement; the new replica is recorded (BodyPlace) only after the
// target has fetched, verified and fsynced its copy. A removed node's
// replicas are dropped from the record once the body has R others. When
// a node comes back, its replicas count again, and copies beyond R are
// trimmed, but only after the copies that stay were verified. All copying
// goes through one byte-rate limit, so repair runs while mail flows. The
// scan restarts from the records, so a new leader resumes where the old
// one stopped.

// Repair defaults.
const (
	DefaultRepairGrace    = 10 * time.Minute
	DefaultRepairInterval = 30 * time.Second
	DefaultRepairRate     = 32 << 20 // bytes/s
	DefaultRebalance      = 0.2      // allowed (max-min)/max of used bytes
	// DefaultRepairBusyCopies is the number of copies at once while mail
	// is being delivered (repair_yield.go).
	DefaultRepairBusyCopies = 2
	repairScanBatch         = 1000
	// repairWorkers copy different bodies at once: a copy is latency
	// bound (fetch, fsync, raft commit), and concurrent commits share
	// raft batches. The byte-rate limit still bounds the total.
	repairWorkers = 32
)

// RepairStatus is the leader's view of redundancy, for cluster status.
type RepairStatus struct {
	LastRound       time.Time `json:"last_round,omitzero"`
	LastScan        time.Time `json:"last_scan,omitzero"` // the last round that read every body record
	Bodies          int64     `json:"bodies"`             // referenced bodies seen in the last scan
	UnderReplicated int64     `json:"under_replicated"`   // short of R healthy replicas at the last scan
	Unrepairable    int64     `json:"unrepairable"`       // no healthy replica to copy from
	Repairing       int64     `json:"repairing"`          // copies in flight now
	Repaired        int64     `json:"repaired_total"`     // copies made since this node led
	Trimmed         int64     `json:"trimmed_total"`
	Moved           int64     `json:"moved_total"` // rebalanced
}

type repairState struct {
	round sync.Mutex // one round at a time (timer, kick, admin request)
	clean *cleanScan // under round (repair_skip.go)
	mu    sync.Mutex
	st    RepairStatus
}

func (r *repairState) update(f func(*RepairStatus)) {
	r.mu.Lock()
	f(&r.st)
	r.mu.Unlock()
}

func (r *repairState) get() RepairStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// liveness says which members count as healthy now, and which of them
// reported no room for new bodies (full; this node: now): those refuse
// every copy, so repair sends them none.
type liveness struct {
	self    string
	members map[string]fsm.Member
	alive   map[string]bool
	full    map[string]bool
}

func (n *Node) liveness() (liveness, error) {
	ms, err := n.state.Members()
	if err != nil {
		return liveness{}, err
	}
	l := liveness{self: n.cfg.ID, members: map[string]fsm.Member{}, alive: map[string]bool{}, full: map[string]bool{}}
	for _, m := range ms {
		l.members[m.ID] = m
		l.alive[m.ID] = m.ID == n.cfg.ID || n.placement.downFor(m.ID, n.started) < n.cfg.RepairGrace
		l.full[m.ID] = n.reportedFull(m.ID)
	}
	return l, nil
}

// reportedFull reports whether a member's store had no room for new
// bodies when last seen (this node: now). A peer never polled, or a
// store that cannot say, is not known to be full.
func (n *Node) reportedFull(id string) bool {
	if id != n.cfg.ID {
		return n.placement.full(id)
	}
	st, err := n.bodies.Stats(context.Background())
	return err == nil && st.Room() == 0
}

// RepairRound runs one repair pass on the leader, reading every body
// record, and returns its status.
func (n *Node) RepairRound(ctx context.Context) (RepairStatus, error) {
	return n.repairRound(ctx, false)
}

// repairRound is RepairRound; a periodic round may skip the scan when
// nothing can have changed since the last clean one (repair_skip.go).
func (n *Node) repairRound(ctx context.Context, periodic bool) (RepairStatus, error) {
	if !n.IsLeader() {
		return RepairStatus{}, ErrNotLeader
	}
	n.repair.round.Lock()
	defer n.repair.round.Unlock()
	// The mark first: an entry applied after this read moves it past what
	// the round saw, even one that changes R or the members.
	mark, err := n.state.PlacementMark()
	if err != nil {
		return RepairStatus{}, err
	}
	settings, err := n.state.Settings()
	if err != nil {
		return RepairStatus{}, err
	}
	live, err := n.liveness()
	if err != nil {
		return RepairStatus{}, err
	}
	key := n.scanKey(mark, settings.Replicas, live)
	if periodic && n.repair.clean.covers(key) {
		n.repair.update(func(s *RepairStatus) { s.LastRound = key.at })
		err := n.balance(ctx, live, settings.Replicas)
		return n.repair.get(), err
	}
	n.repair.clean = nil
	res, err := n.scanAndRepair(ctx, live, settings.Replicas)
	if err != nil {
		return RepairStatus{}, err
	}
	n.repair.update(func(s *RepairStatus) {
		s.LastRound, s.Bodies, s.UnderReplicated, s.Unrepairable = time.Now(), res.bodies, res.under, res.unrepairable
		s.LastScan = s.LastRound
	})
	if res.unsettled == 0 {
		n.repair.clean = &key
	}
	// Redundancy before balance: a round that found repairable bodies
	// short does not move bodies (the next one will, once nothing is
	// short), and a rebalance stops after one interval, so that the next
	// round's repair is never queued behind a long rebalance.
	if res.under > res.unrepairable {
		return n.repair.get(), nil
	}
	err = n.balance(ctx, live, settings.Replicas)
	return n.repair.get(), err
}

// balance is a round's rebalance, for at most one repair interval.
func (n *Node) balance(ctx context.Context, live liveness, r int) error {
	return n.rebalance(ctx, live, r, time.Now().Add(max(n.cfg.RepairInterval, time.Second)))
}

// scanResult counts what a scan found.
type scanResult struct {
	bodies       int64 // referenced bodies
	under        int64 // short of R healthy replicas
	unrepairable int64 // with no healthy replica
	unsettled    int64 // work for a scan (repair_skip.go)
}

// scanAndRepair reads every referenced body record and repairs, unlists
// and trims as repairBody decides, with repairWorkers at once.
func (n *Node) scanAndRepair(ctx context.Context, live liveness, r int) (scanResult, error) {
	var bodies, under, unrepairable, unsettled atomic.Int64
	work := make(chan fsm.BodyRecord)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	for range repairWorkers {
		wg.Go(func() {
			for rec := range work {
				if !n.IsLeader() {
					// Deposed: the new leader's rounds take over. (Changes
					// already decided are conditional on the listing seen.)
					errOnce.Do(func() { firstErr = ErrNotLeader })
					continue
				}
				if !settled(live, r, rec) {
					unsettled.Add(1)
				}
				short, err := n.repairBody(ctx, live, r, rec)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
				}
				if short {
					under.Add(1)
					if !slices.ContainsFunc(rec.Replicas, func(id string) bool { return live.alive[id] }) {
						unrepairable.Add(1)
					}
				}
			}
		})
	}
	err := n.scanReferenced(ctx, func(rec fsm.BodyRecord) error {
		bodies.Add(1)
		work <- rec
		return nil
	})
	close(work)
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	return scanResult{bodies.Load(), under.Load(), unrepairable.Load(), unsettled.Load()}, err
}

// scanBodies calls fn for every body record, in hash order, until fn
// fails or ctx ends.
func (n *Node) scanBodies(ctx context.Context, fn func(fsm.BodyRecord) error) error {
	for after := ""; ; {
		recs, err := n.state.Bodies(after, repairScanBatch)
		if err != nil || len(recs) == 0 {
			return err
		}
		after = recs[len(recs)-1].Hash
		for _, rec := range recs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
}

// scanReferenced calls fn for every referenced body record not being
// collected, in hash order, until fn fails or ctx ends.
func (n *Node) scanReferenced(ctx context.Context, fn func(fsm.BodyRecord) error) error {
	return n.scanBodies(ctx, func(rec fsm.BodyRecord) error {
		if rec.Refs > 0 && rec.Collecting == 0 {
			return fn(rec)
		}
		return nil
	})
}

// repairBody brings one body to R healthy replicas, drops removed nodes
// from its record and trims extras. It reports whether the body was
// short of R when the round saw it. Failures to copy are logged and left
// for the next round; only a cancelled context is an error.
func (n *Node) repairBody(ctx context.Context, live liveness, r int, rec fsm.BodyRecord) (bool, error) {
	var healthy, removed []string
	for _, id := range rec.Replicas {
		switch {
		case live.members[id].ID == "":
			removed = append(removed, id)
		case live.alive[id]:
			healthy = append(healthy, id)
		}
	}
	short := len(healthy) < r
	switch {
	case short && len(healthy) > 0:
		targets := n.repairTargets(live, rec.Replicas)
		for _, target := range targets[:min(r-len(healthy), len(targets))] {
			var drop []string // the copy that restores R also unlists removed members
			if len(healthy)+1 >= r {
				drop = removed
			}
			if err := n.copyReplica(ctx, live, rec, healthy, target, drop); err != nil {
				if ctx.Err() != nil {
					return short, ctx.Err()
				}
				if errors.Is(err, errMoot) {
					return short, nil
				}
				n.log.Warn("repair copy failed", "body", rec.Hash, "target", target.ID, "err", err)
				continue
			}
			healthy = append(healthy, target.ID)
			if drop != nil {
				removed = nil
			}
		}
		if len(removed) > 0 && len(healthy) >= r {
			return short, n.unlist(ctx, rec.Hash, removed, healthy)
		}
	case !short && len(removed) > 0:
		return short, n.unlist(ctx, rec.Hash, removed, healthy)
	case len(healthy) > r && len(healthy) == len(rec.Replicas):
		return short, n.trim(ctx, live, rec, len(healthy)-r)
	}
	return short, nil
}

// repairTargets lists live members without a copy that had room for it
// when last seen, in placement order.
func (n *Node) repairTargets(live liveness, have []string) []fsm.Member {
	var out []fsm.Member
	for id, m := range live.members {
		if live.canTake(id, have) && n.health.ok(id) {
			out = append(out, m)
		}
	}
	n.placement.order(out)
	return out
}

// errNotPlaced: the directory did not take a placement change, because a
// replica named is no longer a member, or the body is gone or being
// collected. The record is as it was, so nothing the change would have
// made redundant (a moved or trimmed copy) may be deleted.
var errNotPlaced = errors.New("placement change not taken")

// place records add and unlists remove for a body in one command, if it
// is still listed on exactly seen (nil: whatever its listing).
func (n *Node) place(ctx context.Context, hash string, add, remove, seen []string) error {
	var changed bool
	err := n.applyAccess(ctx, &fsm.BodyPlace{Hash: hash, Add: add, Remove: remove, If: seen}, &changed)
	if errors.Is(err, ErrInvalidArgument) {
		n.log.Warn("placement change refused", "body", hash, "add", add, "remove", remove, "err", err)
		return fmt.Errorf("%w: %v", errNotPlaced, err)
	}
	if err == nil && !changed {
		return errNotPlaced
	}
	return err
}

// unlist drops removed members from a body's record, keeping the
// healthy copies. The round's view of the members is as old as the
// round: a node that joined again since (its data directory kept) holds
// its copy and stays listed, and the copies kept must still be on
// members (unlistKeeping). A change the directory did not take leaves
// nothing to undo.
func (n *Node) unlist(ctx context.Context, hash string, removed, healthy []string) error {
	ms, err := n.state.Members()
	if err != nil {
		return err
	}
	gone := slices.DeleteFunc(slices.Clone(removed), func(id string) bool {
		return slices.ContainsFunc(ms, func(m fsm.Member) bool { return m.ID == id })
	})
	if len(gone) == 0 {
		return nil
	}
	_, err = n.unlistKeeping(ctx, hash, healthy, gone, nil)
	return err
}

// copyReplica has target fetch rec from one of sources, then records it,
// unlisting drop in the same command.
func (n *Node) copyReplica(ctx context.Context, live liveness, rec fsm.BodyRecord, sources []string, target fsm.Member, drop []string) error {
	n.repair.update(func(s *RepairStatus) { s.Repairing++ })
	defer n.repair.update(func(s *RepairStatus) { s.Repairing-- })
	cur, release, err := n.copyTurn(ctx, rec)
	if err != nil {
		return err
	}
	defer release()
	if slices.Contains(cur.Replicas, target.ID) {
		return errMoot
	}
	var addrs []string
	for _, id := range sources {
		addrs = append(addrs, live.members[id].ClusterAddr)
	}
	if err := n.fetchOn(ctx, target, rec.Hash, rec.Size, addrs); err != nil {
		n.health.fail(target.ID)
		return err
	}
	if err := n.place(ctx, rec.Hash, []string{target.ID}, drop, cur.Replicas); err != nil {
		if errors.Is(err, errNotPlaced) {
			return errMoot // the copy is an orphan now; the sweep takes it
		}
		return err
	}
	n.repair.update(func(s *RepairStatus) { s.Repaired++ })
	return nil
}

// fetchRequest asks a node to copy a body from the first source that
// serves an intact copy.
type fetchRequest struct {
	Sources []string `json:"sources"`
}

func (n *Node) fetchOn(ctx context.Context, target fsm.Member, hash string, size int64, sources []string) error {
	if target.ID == n.cfg.ID {
		return n.fetchFrom(ctx, hash, sources)
	}
	return n.upkeepCall(ctx, copyTime(size), target, "POST", "/rpc/fetch/"+hash, mustJSON(fetchRequest{Sources: sources}), nil)
}

// fetchFrom copies a body into the local store from the first source
// that has an intact copy. The store checks the hash and fsyncs.
func (n *Node) fetchFrom(ctx context.Context, hash string, sources []string) error {
	h, err := storage.ParseHash(hash)
	if err != nil {
		return err
	}
	var errs []error
	for _, addr := range sources {
		if addr == n.advertise {
			if err := n.bodies.Verify(ctx, h); err == nil {
				return nil
			}
			continue
		}
		if err := n.fetchBody(ctx, addr, h); err != nil {
			errs = append(errs, fmt.Errorf("from %s: %w", addr, err))
			continue
		}
		return nil
	}
	return fmt.Errorf("%w: %s: %v", ErrBodyUnavailable, hash, errors.Join(errs...))
}
