package node

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// VerifyProgress reports a cluster-wide verification as it runs.
type VerifyProgress struct {
	Done        int64    `json:"done"`
	Total       int64    `json:"total"`
	Short       int64    `json:"short"`                  // bodies with fewer than R verified replicas
	ShortBodies []string `json:"short_bodies,omitempty"` // the first few
	// Unverified counts, per node, listed replicas that did not verify,
	// and FirstErrors says why the first one failed: corruption, a missing
	// copy, or a node that did not answer.
	Unverified  map[string]int64  `json:"unverified,omitempty"`
	FirstErrors map[string]string `json:"first_errors,omitempty"`
	Finished    bool              `json:"finished"`
	Error       string            `json:"error,omitempty"`
	// Counting: the bodies are still being counted, and Total is the
	// count so far (Done is 0). Such a line is sent every
	// verifyHeartbeat while the count lasts, which on a large store is
	// minutes, so that a client sees the node at work. A CLI of an
	// earlier release ignores the field and takes the line for progress
	// at 0 of Total.
	Counting bool `json:"counting,omitempty"`
}

// verifyHeartbeat is how often a verification sends a line while
// nothing else went out: the count before the first body is checked,
// or bodies that take long to check.
const verifyHeartbeat = 200 * time.Millisecond

const maxShortListed = 20

// verifyWorkers check bodies at once. A check is an RPC per replica that
// mostly waits, and eight ran at about 250 bodies/s under load in jepsen
// (30,000 bodies took over two minutes).
const verifyWorkers = 32

// VerifyAll checks that every referenced body has R replicas that verify
// (every chunk read and checked on the node holding it). progress is
// called now and then, and once at the end.
func (n *Node) VerifyAll(ctx context.Context, progress func(VerifyProgress)) (VerifyProgress, error) {
	if err := n.readBarrier(ctx); err != nil {
		return VerifyProgress{}, err
	}
	settings, err := n.state.Settings()
	if err != nil {
		return VerifyProgress{}, err
	}
	live, err := n.liveness()
	if err != nil {
		return VerifyProgress{}, err
	}
	run := newVerifyRun(progress, verifyHeartbeat)
	defer run.stopHeartbeat()
	work := make(chan fsm.BodyRecord)
	var wg sync.WaitGroup
	for range verifyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rec := range work {
				ok, failed, referenced := n.verifyBody(ctx, live, settings.Replicas, rec)
				run.checked(rec.Hash, ok, settings.Replicas, failed, referenced)
			}
		}()
	}
	// Count first, then stream: holding every record for the total would
	// take memory in proportion to the directory.
	total, err := n.countReferenced(ctx, run)
	run.counted(total)
	if err == nil {
		err = n.scanReferenced(ctx, func(rec fsm.BodyRecord) error {
			select {
			case work <- rec:
			case <-ctx.Done():
				return ctx.Err()
			}
			run.sendIfDue(verifyHeartbeat)
			return nil
		})
	}
	close(work)
	wg.Wait()
	return run.finish(err), err
}

// verifyBody counts the replicas of rec that verify. When fewer than r
// do, the listing may have moved since the scan that produced rec began
// (repair, rebalance, a trim of extra copies): the body is then judged by
// its record as the directory has it now. referenced is false for a body
// no longer referenced, which needs no replicas.
func (n *Node) verifyBody(ctx context.Context, live liveness, r int, rec fsm.BodyRecord) (int, map[string]error, bool) {
	ok, failed := n.verifyReplicas(ctx, live, rec)
	if ok >= r {
		return ok, failed, true
	}
	cur, referenced := n.currentBody(ctx, rec)
	if !referenced {
		return 0, nil, false
	}
	ok, failed = n.verifyReplicas(ctx, live, cur)
	return ok, failed, true
}

// verifyReplicas checks every listed replica of rec on a live member,
// returning how many verified and why the others did not. A member down
// past the repair grace is not asked (a paused one would cost each body
// a call's timeout): its copy counts as not verified.
func (n *Node) verifyReplicas(ctx context.Context, live liveness, rec fsm.BodyRecord) (int, map[string]error) {
	ok, failed := 0, map[string]error{}
	for _, id := range rec.Replicas {
		m, member := live.members[id]
		if !member {
			continue // a removed node: repair drops the listing
		}
		if !live.alive[id] {
			failed[id] = errMemberDown
			continue
		}
		if err := n.verifyOn(ctx, m, rec.Hash); err != nil {
			failed[id] = err
			continue
		}
		ok++
	}
	return ok, failed
}

// currentBody reads rec's body record again, up to date with the leader
// when a read barrier passes. referenced is false when it is no longer
// referenced (or is being collected). If it cannot be read, rec stands.
func (n *Node) currentBody(ctx context.Context, rec fsm.BodyRecord) (fsm.BodyRecord, bool) {
	_ = n.readBarrier(ctx) // best effort: this node's record is the fallback
	b, err := n.state.Body(rec.Hash)
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		return rec, false
	case err != nil:
		return rec, true
	}
	return fsm.BodyRecord{Hash: rec.Hash, Body: b}, b.Refs > 0 && b.Collecting == 0
}

// clone copies p, maps included, so the copy can be encoded while the
// workers go on.
func (p *VerifyProgress) clone() VerifyProgress {
	c := *p
	c.ShortBodies = slices.Clone(p.ShortBodies)
	c.Unverified, c.FirstErrors = maps.Clone(p.Unverified), maps.Clone(p.FirstErrors)
	return c
}

// noteFailures counts replicas that did not verify; the caller holds the
// progress lock.
func (p *VerifyProgress) noteFailures(failed map[string]error) {
	for id, err := range failed {
		if p.Unverified == nil {
			p.Unverified, p.FirstErrors = map[string]int64{}, map[string]string{}
		}
		p.Unverified[id]++
		if _, seen := p.FirstErrors[id]; !seen {
			p.FirstErrors[id] = err.Error()
		}
	}
}

// countReferenced counts the referenced bodies, telling run the count
// so far as it goes.
func (n *Node) countReferenced(ctx context.Context, run *verifyRun) (int64, error) {
	var total int64
	hook := n.onVerifyCount.Load()
	err := n.scanReferenced(ctx, func(fsm.BodyRecord) error {
		if hook != nil {
			(*hook)()
		}
		total++
		run.countedSoFar(total)
		return nil
	})
	return total, err
}

// redundancyRoutes adds the admin endpoints of redundancy upkeep.
func (n *Node) redundancyRoutes(mux *http.ServeMux, route func(string, func(*http.Request) (any, error))) {
	// Verification streams one JSON progress object per line.
	mux.Handle("POST /v1/storage/verify", n.requireToken(n.refuseStreamIfRemoved(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		flusher, _ := w.(http.Flusher)
		_, err := n.VerifyAll(r.Context(), func(p VerifyProgress) {
			enc.Encode(p)
			if flusher != nil {
				flusher.Flush()
			}
		})
		if err != nil {
			enc.Encode(VerifyProgress{Error: err.Error()})
		}
	})))
	route("POST /v1/storage/repair", func(r *http.Request) (any, error) {
		if n.IsLeader() {
			return n.RepairRound(r.Context())
		}
		if err := n.kickRepairOnLeader(r.Context()); err != nil {
			return nil, err
		}
		return map[string]string{"status": "repair round requested from the leader"}, nil
	})
	route("POST /v1/storage/gc", func(r *http.Request) (any, error) {
		return n.CollectGarbageOnLeader(r.Context())
	})
	if n.cfg.FaultInjection {
		route("POST /v1/fault/damage/{hash}", func(r *http.Request) (any, error) {
			h, err := storage.ParseHash(r.PathValue("hash"))
			if err != nil {
				return nil, &fsm.Error{Kind: fsm.ErrInvalid, Msg: err.Error()}
			}
			if r.URL.Query().Get("keep_crc") != "" {
				// Damaged behind a valid chunk checksum: only the
				// whole-body hash finds it, at the end of a read from
				// the start (before it, for a body of one chunk).
				return nil, n.bodies.DamageKeepCRC(r.Context(), h, 0)
			}
			return nil, n.bodies.Damage(r.Context(), h)
		})
	}
}
