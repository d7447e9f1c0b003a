package node

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// applyGate is a group commit in front of raft.Apply on the leader.
//
// raft writes and replicates whatever proposals are waiting when its
// leader loop comes round, and every such batch costs a log commit (two
// fdatasyncs in bolt) on every node, one AppendEntries round and one FSM
// batch. Without a gate, proposals trickle in and batches stay small
// while each costs the same. The gate lets at most `window` batches be in
// raft at once; proposals that arrive meanwhile wait and go in together
// when a batch completes (or at once, when `max` of them are waiting). A
// lone proposal on an idle leader passes straight through, so the gate
// adds no latency when there is nothing to batch with.
//
// Invariant: every proposal the gate takes is proposed exactly once; a
// caller gets its future back and must report it with done once the
// future has completed.
type applyGate struct {
	r       *raft.Raft
	timeout time.Duration
	window  int // batches in flight; <= 0 disables the gate
	max     int // proposals per batch

	mu       sync.Mutex
	inflight int
	queue    []*gated
}

// gated is one proposal waiting at, or sent through, the gate.
type gated struct {
	data  []byte
	out   chan raft.ApplyFuture
	batch *gateBatch
}

// gateBatch counts the proposals of one batch still in raft.
type gateBatch struct{ open int }

func newApplyGate(r *raft.Raft, timeout time.Duration, window, max int) *applyGate {
	return &applyGate{r: r, timeout: timeout, window: window, max: max}
}

// apply proposes data and returns its future; the caller must call done
// with the returned proposal once the future has completed.
func (g *applyGate) apply(data []byte) (raft.ApplyFuture, *gated) {
	if g.window <= 0 {
		return g.r.Apply(data, g.timeout), nil
	}
	p := &gated{data: data}
	g.mu.Lock()
	if g.inflight < g.window && len(g.queue) == 0 {
		g.inflight++
		p.batch = &gateBatch{open: 1}
		g.mu.Unlock()
		return g.r.Apply(data, g.timeout), p
	}
	p.out = make(chan raft.ApplyFuture, 1)
	g.queue = append(g.queue, p)
	var next []*gated
	if len(g.queue) >= g.max {
		next = g.take()
	}
	g.mu.Unlock()
	g.propose(next)
	return <-p.out, p
}

// done reports that p's future completed; the last proposal of a batch
// to complete lets the waiting ones go.
func (g *applyGate) done(p *gated) {
	if p == nil {
		return
	}
	g.mu.Lock()
	p.batch.open--
	var next []*gated
	if p.batch.open == 0 {
		g.inflight--
		if len(g.queue) > 0 {
			next = g.take()
		}
	}
	g.mu.Unlock()
	if next != nil {
		// Not on this caller's time: its own answer is ready, and raft.Apply
		// can block (up to the enqueue timeout) when raft is stalled.
		go g.propose(next)
	}
}

// take removes up to max waiting proposals as a new batch in flight.
// g.mu is held.
func (g *applyGate) take() []*gated {
	k := min(len(g.queue), g.max)
	batch := g.queue[:k:k]
	g.queue = append([]*gated(nil), g.queue[k:]...)
	b := &gateBatch{open: k}
	for _, p := range batch {
		p.batch = b
	}
	g.inflight++
	return batch
}

// propose hands a taken batch to raft in order, back to back, so that the
// leader loop finds it waiting as one run.
func (g *applyGate) propose(batch []*gated) {
	for _, p := range batch {
		p.out <- g.r.Apply(p.data, g.timeout)
	}
}
