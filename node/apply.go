package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// Apply commits cmd through raft from any node: a follower forwards it to
// the leader. It returns the command's value, or its business error (which
// wraps an fsm sentinel). ErrIndeterminate means leadership changed while
// the entry was in flight, so it may or may not have been applied.
//
// When Apply returns, this node's own state has applied the entry too, so
// whatever runs next on this node sees the write (read-your-writes). On a
// follower that costs up to one raft commit round (CommitTimeout).
func (n *Node) Apply(ctx context.Context, cmd fsm.Command) (any, error) {
	out, index, err := n.propose(ctx, cmd)
	if index > 0 {
		if werr := n.state.WaitApplied(ctx, index); werr != nil && err == nil {
			err = fmt.Errorf("%w: committed at %d but not yet applied here: %v", ErrIndeterminate, index, werr)
		}
	}
	if hook := n.onApplied.Load(); hook != nil {
		err = (*hook)(cmd, err)
	}
	return out, err
}

// propose commits cmd and returns as soon as the leader has applied it,
// with the entry's raft index; this node may not have applied it yet. The
// delivery path uses it: the next SMTP transaction need not see the last.
func (n *Node) propose(ctx context.Context, cmd fsm.Command) (any, uint64, error) {
	data, err := fsm.EncodeAs(cmd, n.commandEncoding())
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	var out any
	var index uint64
	err = n.onLeader(ctx,
		func() (err error) { out, index, err = n.applyLocal(ctx, data); return err },
		func(addr string) error {
			err := n.toLeader(ctx, addr, func(ctx context.Context) (err error) {
				out, index, err = n.forwardApply(ctx, addr, data)
				return err
			})
			if errors.Is(err, errLeaderMoved) {
				// The old leader may have applied it: the outcome is unknown.
				return fmt.Errorf("%w: %v", ErrIndeterminate, err)
			}
			return err
		})
	if err == nil || fsm.Code(err) != "" {
		n.metrics.applyLatency.Observe(time.Since(start).Seconds())
	}
	return out, index, err
}

// applyLocal proposes data on this node, which must be the leader, and
// returns the entry's value and index (also with a business error).
func (n *Node) applyLocal(ctx context.Context, data []byte) (any, uint64, error) {
	f, err := n.gate.apply(ctx, data)
	if err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader):
			return nil, 0, ErrNotLeader
		case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, 0, fmt.Errorf("%w: %v", ErrIndeterminate, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, 0, ErrClosed
		}
		return nil, 0, fmt.Errorf("raft apply: %w", err)
	}
	res, ok := f.Response().(fsm.Result)
	if !ok {
		return nil, 0, fmt.Errorf("raft apply: unexpected response %T", f.Response())
	}
	return res.Value, f.Index(), res.Err
}

// Barrier waits until the local state reflects every write committed
// before the call began (a read-index barrier). Concurrent callers on one
// node share a single round trip to the leader.
func (n *Node) Barrier(ctx context.Context) error {
	start := time.Now()
	err := n.reads.wait(ctx)
	n.metrics.readIndex.Observe(time.Since(start).Seconds())
	return err
}

// leaderReadIndex returns the index a read must wait for: this leader's
// applied index, taken before confirming that it still leads.
//
// Why the applied index and not the commit index: raft never hands no-op
// and barrier entries to the FSM, so a follower's state may never "reach"
// a commit index that ends in one. Every acknowledged write was applied on
// the leader that acknowledged it before the acknowledgement, and a new
// leader passes a barrier in its own term (applying everything earlier)
// before it serves its first read index, so the leader's applied index
// covers every write acknowledged before the read began.
//
// vouch, when a follower asks, is that follower's term as it sent the
// request, which counts towards the quorum that confirms the term.
func (n *Node) leaderReadIndex(ctx context.Context, vouch *termVouch) (uint64, error) {
	if n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() != term {
		if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
			return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		n.readyTerm.Store(term)
	}
	idx := n.state.Applied()
	if err := n.confirmTerm(ctx, term, vouch); err != nil {
		return 0, err
	}
	return idx, nil
}

// readIndex batches barrier requests: every request joins the next round,
// and a round starts only after the previous one ended, so each round's
// index is taken after all of its requests began.
type readIndex struct {
	n       *Node
	mu      sync.Mutex
	pending []chan error
	running bool
}

func (ri *readIndex) wait(ctx context.Context) error {
	ch := make(chan error, 1)
	ri.mu.Lock()
	ri.pending = append(ri.pending, ch)
	if !ri.running {
		ri.running = true
		go ri.loop()
	}
	ri.mu.Unlock()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("read barrier: %w", ctx.Err())
	}
}

func (ri *readIndex) loop() {
	for {
		ri.mu.Lock()
		batch := ri.pending
		ri.pending = nil
		if len(batch) == 0 {
			ri.running = false
			ri.mu.Unlock()
			return
		}
		ri.mu.Unlock()
		err := ri.round()
		for _, ch := range batch {
			ch <- err
		}
	}
}

func (ri *readIndex) round() error {
	n := ri.n
	n.metrics.readRounds.Inc()
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	var idx uint64
	err := n.onLeader(ctx,
		func() (err error) { idx, err = n.leaderReadIndex(ctx, nil); return err },
		func(addr string) error {
			err := n.toLeader(ctx, addr, func(ctx context.Context) error {
				return n.call(ctx, addr, "GET", n.readIndexPath(), nil, &idx)
			})
			if errors.Is(err, errLeaderMoved) {
				return fmt.Errorf("%w: %v", ErrNoLeader, err) // a read: safe to ask the next leader
			}
			return err
		})
	if err != nil {
		return err
	}
	return n.state.WaitApplied(ctx, idx)
}

// commandEncoding is the newest command encoding the cluster setting
// allows (fsm.Settings.CommandEncoding), as this node has applied it: a
// change of the setting reaches each proposer with its apply.
func (n *Node) commandEncoding() int {
	s, err := n.state.Settings()
	if err != nil {
		return fsm.EncodingJSON
	}
	return s.CommandEncoding
}
