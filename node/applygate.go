package node

import (
	"context"
	"slices"
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
// Invariants:
//   - every proposal the gate takes is proposed at most once, and a
//     proposal that was never handed to raft fails with a definite error
//     (its context ended while it waited, its deadline passed, or the gate
//     closed), so callers may retry it without risk of a double apply;
//   - the timeout bounds a proposal's wait for raft to accept it, counted
//     from when it reached the gate, as raft.Apply's timeout does;
//   - no caller waits past close: raft never answers a proposal still in
//     its apply buffer when it shuts down.
type applyGate struct {
	r       *raft.Raft
	timeout time.Duration
	window  int // batches in flight; <= 0 disables the gate
	max     int // proposals per batch
	down    chan struct{}

	mu       sync.Mutex
	inflight int
	queue    []*gated
	closed   bool
}

// gated is one proposal waiting at, or sent through, the gate.
type gated struct {
	data     []byte
	deadline time.Time // raft must accept it by then
	out      chan raft.ApplyFuture
	batch    *gateBatch // nil until it is taken into a batch
}

// gateBatch counts the proposals of one batch still in raft.
type gateBatch struct{ open int }

// failedFuture answers a proposal that never reached raft.
type failedFuture struct{ err error }

func (f failedFuture) Error() error  { return f.err }
func (f failedFuture) Index() uint64 { return 0 }
func (f failedFuture) Response() any { return nil }

// closeGrace is how long a caller whose proposal is in raft waits for its
// answer after the gate closed before it counts the proposal as lost in
// raft's apply buffer.
const closeGrace = time.Second

func newApplyGate(r *raft.Raft, timeout time.Duration, window, max int) *applyGate {
	return &applyGate{r: r, timeout: timeout, window: window, max: max, down: make(chan struct{})}
}

// apply proposes data and waits for raft's answer. The future it returns
// has completed; err is its error, or why the proposal never reached raft.
func (g *applyGate) apply(ctx context.Context, data []byte) (raft.ApplyFuture, error) {
	f, p, err := g.enter(ctx, data)
	if err != nil {
		return f, err
	}
	err = g.wait(f)
	g.done(p)
	return f, err
}

// enter hands data to raft, directly or with the next batch, and returns
// its future and its place in a batch (nil when the gate is off).
func (g *applyGate) enter(ctx context.Context, data []byte) (raft.ApplyFuture, *gated, error) {
	if g.window <= 0 {
		return g.r.Apply(data, g.timeout), nil, nil
	}
	p := &gated{data: data, deadline: time.Now().Add(g.timeout)}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil, nil, raft.ErrRaftShutdown
	}
	if g.inflight < g.window && len(g.queue) == 0 {
		g.inflight++
		p.batch = &gateBatch{open: 1}
		g.mu.Unlock()
		return g.r.Apply(data, g.timeout), p, nil
	}
	p.out = make(chan raft.ApplyFuture, 1)
	g.queue = append(g.queue, p)
	var next []*gated
	if len(g.queue) >= g.max {
		next = g.take()
	}
	g.mu.Unlock()
	g.propose(next)
	select {
	case f := <-p.out:
		return f, p, nil
	case <-ctx.Done():
	}
	if g.withdraw(p) {
		return nil, nil, ctx.Err()
	}
	return <-p.out, p, nil // taken meanwhile: it is being proposed
}

// wait waits for f to complete, but not for ever once the gate is closed.
func (g *applyGate) wait(f raft.ApplyFuture) error {
	answer := make(chan error, 1)
	go func() { answer <- f.Error() }()
	select {
	case err := <-answer:
		return err
	case <-g.down:
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case err := <-answer:
		return err
	case <-t.C:
		return raft.ErrRaftShutdown
	}
}

// withdraw removes p from the queue if it is still there.
func (g *applyGate) withdraw(p *gated) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	i := slices.Index(g.queue, p)
	if i < 0 {
		return false
	}
	g.queue = slices.Delete(g.queue, i, i+1)
	return true
}

// done reports that p's future completed; the last proposal of a batch
// to complete lets the waiting ones go.
func (g *applyGate) done(p *gated) {
	if p == nil || p.batch == nil {
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
// leader loop finds it waiting as one run. A proposal past its deadline
// fails without reaching raft, so a stalled leader answers the whole
// batch within one timeout.
func (g *applyGate) propose(batch []*gated) {
	for _, p := range batch {
		left := time.Until(p.deadline)
		if left <= 0 {
			p.out <- failedFuture{raft.ErrEnqueueTimeout}
			continue
		}
		p.out <- g.r.Apply(p.data, left)
	}
}

// close fails the waiting proposals and releases callers whose proposal
// raft will never answer. Call it once raft has shut down.
func (g *applyGate) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	queue := g.queue
	g.queue = nil
	g.mu.Unlock()
	close(g.down)
	for _, p := range queue {
		p.out <- failedFuture{raft.ErrRaftShutdown}
	}
}
