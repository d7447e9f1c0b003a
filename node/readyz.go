package node

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// /readyz needs no token (load balancers, devcluster and jepsen probe
// it), and its check passes the read-index barrier: a leader round trip.
// So that anyone reaching the admin port cannot make the node do that
// work at will, every answer comes from one shared check: a request
// joins the check in flight, or takes the last result while it is
// younger than readyFresh. A flood costs one round per readyFresh (plus
// the round's own time), however many requests it sends.
//
// readyFresh is how stale an answer may be: a node that just became
// ready is reported unready, or one that lost its leader ready, at most
// that much longer than a fresh check would say. Half a second is below
// the election and heartbeat timeouts (1 s by default) that a lost
// leader is noticed in anyway, and well below the intervals probes poll
// at (devcluster and jepsen poll every 200 ms, and take the first 200).
const readyFresh = 500 * time.Millisecond

// readyTimeout bounds one readiness check.
const readyTimeout = 2 * time.Second

// readiness is the result of one readiness check.
type readiness struct {
	err     error // nil: ready
	leader  string
	applied uint64
}

// readyCheck runs at most one check at a time, and keeps its result for
// fresh.
type readyCheck struct {
	check func(ctx context.Context) readiness
	ctx   context.Context // bounds every check: the node's lifetime
	fresh time.Duration

	mu      sync.Mutex
	last    readiness
	at      time.Time     // when last was found; zero: never
	running chan struct{} // closed when the check in flight ends; nil: none
}

// get returns a result at most fresh old, or that of a check started
// after the call; ctx bounds only the wait, not the shared check.
func (rc *readyCheck) get(ctx context.Context) (readiness, error) {
	rc.mu.Lock()
	if !rc.at.IsZero() && time.Since(rc.at) < rc.fresh {
		defer rc.mu.Unlock()
		return rc.last, nil
	}
	done := rc.running
	if done == nil {
		done = make(chan struct{})
		rc.running = done
		go rc.run(done)
	}
	rc.mu.Unlock()
	select {
	case <-done:
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.last, nil
	case <-ctx.Done():
		return readiness{}, fmt.Errorf("readiness check: %w", ctx.Err())
	}
}

// run checks once, keeps the result and closes done.
func (rc *readyCheck) run(done chan struct{}) {
	ctx, cancel := context.WithTimeout(rc.ctx, readyTimeout)
	defer cancel()
	r := rc.check(ctx)
	rc.mu.Lock()
	rc.last, rc.at, rc.running = r, time.Now(), nil
	rc.mu.Unlock()
	close(done)
}

// readiness passes the read-index barrier: the node knows a leader and
// has applied what the leader had. A node whose body store failed is not
// ready: it refuses every delivery until the store is reopened
// (bodyreopen.go) or the node restarted (it still reads its mail from
// other replicas, but a load balancer should send clients elsewhere, and
// the operator must free space or fix the disk). A node merely at its
// free-space reserve stays ready: it serves reads, its refusals are
// temporary and clear (452 4.3.1), and if every node were full, taking
// them all out of a balancer would turn those refusals into refused
// connections; its free space is in the metrics and the cluster status.
func (n *Node) readiness(ctx context.Context) readiness {
	if err := n.bodies.Failed(); err != nil {
		if n.cfg.BodyStoreReopenInterval > 0 {
			return readiness{err: fmt.Errorf("body store failed (reopened once the disk allows, see the log): %w", err)}
		}
		return readiness{err: fmt.Errorf("body store failed, restart the node: %w", err)}
	}
	if err := n.Barrier(ctx); err != nil {
		return readiness{err: err}
	}
	return readiness{leader: n.LeaderID(), applied: n.state.Applied()}
}

// readyz answers from rc's shared check. Only a caller for whom operator
// says so (one with the admin token) learns more than ready or not: the
// leader's ID, the applied index (which shows how busy the cluster is)
// and the reason it is not ready (which may name the members' cluster
// addresses) are nothing a load balancer needs, nor a stranger.
func readyz(rc *readyCheck, operator func(*http.Request) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// A little longer than a check may take, so that every waiter
		// normally gets the check's own answer.
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout+time.Second)
		defer cancel()
		res, err := rc.get(ctx)
		if err == nil {
			err = res.err
		}
		detail := operator(r)
		if err != nil {
			msg := "not ready"
			if detail {
				msg = err.Error()
			}
			writeJSON(w, http.StatusServiceUnavailable, apiError{Code: "not_ready", Message: msg})
			return
		}
		if !detail {
			writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "leader": res.leader, "applied_index": res.applied})
	}
}
