package jepsen

import (
	"context"
	"errors"
	"fmt"
	"time"

	"powermail/jepsen/check"
)

// The outbound-queue workload: SMTP deliveries to addresses that forward
// to another provider (the Remote). Each is a forward op whose To lists
// the remote recipients; the Remote records what arrives. At the end the
// harness waits until the queue has drained before it stops recording, so
// that an acknowledged forward that never arrives is a loss.

// forwards is the number of forward addresses fwdN@jepsen.test, each to
// destN@remote.test.
const forwards = 3

func fwdAddr(i int) string        { return fmt.Sprintf("fwd%d@%s", i, Domain) }
func fwdDest(i int) string        { return fmt.Sprintf("dest%d@%s", i, RemoteDomain) }
func (w *Workload) queueOn() bool { return w.cfg.QueueClients > 0 }

// setupForwards creates the forwards (409: already there).
func (w *Workload) setupForwards(ctx context.Context) error {
	addr := w.c.Nodes()[0].Admin
	for i := range forwards {
		body := map[string]any{"address": fwdAddr(i), "targets": []string{fwdDest(i)}}
		err := w.c.waitUntil(ctx, 30*time.Second, func(ctx context.Context) error {
			err := w.c.Admin.Post(ctx, addr, "/v1/forwards", body, nil)
			var he *HTTPError
			if errors.As(err, &he) && he.Status == 409 {
				return nil
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("setup forward %s: %w", fwdAddr(i), err)
		}
	}
	return nil
}

// queueClient forwards messages through random nodes: most to one forward
// address, a quarter to two (one queue entry, two remote recipients).
func (w *Workload) queueClient(ctx context.Context, i int) {
	rng := w.rng(uint64(7000 + i))
	proc := w.newProcess()
	nodes := w.c.Nodes()
	for seq := 1; ctx.Err() == nil; seq++ {
		n := nodes[rng.IntN(len(nodes))]
		a := rng.IntN(forwards)
		idx := []int{a}
		if rng.IntN(4) == 0 {
			idx = append(idx, (a+1+rng.IntN(forwards-1))%forwards)
		}
		var addrs, dests []string
		for _, j := range idx {
			addrs, dests = append(addrs, fwdAddr(j)), append(dests, fwdDest(j))
		}
		msgID := fmt.Sprintf("<q%d.%d.s%d@jepsen.test>", i, seq, w.cfg.Seed)
		inv := check.Op{Process: proc, Type: check.Invoke, F: check.FForward, Key: addrs[0], To: dests, Node: n.ID, MsgID: msgID}
		typ := w.sendRecorded(n, inv, addrs, rng)
		if typ == check.OK {
			w.mu.Lock()
			w.forwarded = append(w.forwarded, inv)
			w.mu.Unlock()
		}
		if typ == check.Info {
			proc = w.newProcess()
		}
		sleep(ctx, 150*time.Millisecond+time.Duration(rng.Int64N(int64(300*time.Millisecond))))
	}
}

// DrainForwards waits until every acknowledged forward has reached the
// Remote and the queue is empty (so indeterminate ones are settled too),
// or until budget passes; it returns what was still outstanding.
func (w *Workload) DrainForwards(ctx context.Context, remote *Remote, budget time.Duration) error {
	if !w.queueOn() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	for {
		missing, queued := w.outstanding(ctx, remote)
		if missing == 0 && queued == 0 {
			return nil
		}
		if sleep(ctx, 500*time.Millisecond) != nil {
			return fmt.Errorf("outbound queue did not drain in %v: %d acknowledged forwards not at the remote, %d queue entries (-1: unknown)",
				budget, missing, queued)
		}
	}
}

// outstanding counts acknowledged forwards the Remote has not seen and
// entries still queued (-1 when no node answered).
func (w *Workload) outstanding(ctx context.Context, remote *Remote) (missing, queued int) {
	w.mu.Lock()
	for _, f := range w.forwarded {
		for _, to := range f.To {
			if !remote.Arrived(f.MsgID, to) {
				missing++
			}
		}
	}
	w.mu.Unlock()
	queued = -1
	for _, n := range w.c.Nodes() {
		var entries []struct {
			ID string `json:"id"`
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := w.c.Admin.Get(rctx, n.Admin, "/v1/queue?limit=100", &entries)
		cancel()
		if err == nil {
			return missing, len(entries)
		}
	}
	return missing, queued
}

// watchLeader polls who leads every interval and records each poll (a
// check.FLeader op of process LeaderProcess), so that the forwards
// checker knows when a leader change may have cost the queue an outcome.
func (w *Workload) watchLeader(ctx context.Context, every time.Duration) {
	for ctx.Err() == nil {
		inv := check.Op{Process: LeaderProcess, Type: check.Invoke, F: check.FLeader}
		w.rec.Record(inv)
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
		done := inv
		done.Type, done.Node = check.OK, w.c.Leader(lctx)
		cancel()
		w.rec.Record(done)
		sleep(ctx, every)
	}
}

// LeaderProcess is the history process of the leader polls.
const LeaderProcess = -2
