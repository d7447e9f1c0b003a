package node

import (
	"context"
	"sync"

	"github.com/hashicorp/raft"
)

// termProbes asks each voter for its term on behalf of every read index
// being confirmed (confirmTerm), one request to a voter at a time.
//
// A read goes on as soon as a quorum has answered; a request it cut off
// at that moment would close its connection (HTTP/1.1 cannot take a
// request back), and about every other read on the leader dialled a peer
// again, a handshake each. A probe's request runs to its end under the
// node's context instead, bounded by the apply timeout, and a voter that
// does not answer (paused) holds one request, not one per read.
//
// Like the read-index rounds (readIndex), a read joins the next request
// to each voter, which is sent after every read in it began: the answer
// is a term the voter held at a moment after each of those reads began.
type termProbes struct {
	mu sync.Mutex
	m  map[string]*termProbe // by voter ID and address
}

// termProbe is the reads waiting for the next request to one voter.
type termProbe struct {
	pending []chan<- termAnswer
}

// termAnswer is one voter's answer: its term, or why it gave none.
type termAnswer struct {
	id   raft.ServerID
	term uint64
	err  error
}

// ask has the voter s's next answer sent on to, which must have room for
// it (the asker never reads it if a quorum answered first).
func (ps *termProbes) ask(n *Node, s raft.Server, to chan<- termAnswer) {
	key := string(s.ID) + "\x00" + string(s.Address)
	ps.mu.Lock()
	if ps.m == nil {
		ps.m = map[string]*termProbe{}
	}
	p, running := ps.m[key]
	if !running {
		p = &termProbe{}
		ps.m[key] = p
	}
	p.pending = append(p.pending, to)
	ps.mu.Unlock()
	if running || n.spawn(func(ctx context.Context) { ps.run(ctx, n, s, key, p) }) {
		return
	}
	// The node is closing: no request will be sent.
	for _, ch := range ps.take(key, p, true) {
		ch <- termAnswer{id: s.ID, err: ErrClosed}
	}
}

// run sends requests to voter s while reads wait for one.
func (ps *termProbes) run(ctx context.Context, n *Node, s raft.Server, key string, p *termProbe) {
	for {
		batch := ps.take(key, p, false)
		if len(batch) == 0 {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
		term, err := n.peerTerm(rctx, s)
		cancel()
		for _, ch := range batch {
			ch <- termAnswer{id: s.ID, term: term, err: err}
		}
	}
}

// take returns the reads waiting on p and empties it; when there are
// none, or always if stop, p leaves the map (its run ends).
func (ps *termProbes) take(key string, p *termProbe, stop bool) []chan<- termAnswer {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	batch := p.pending
	p.pending = nil
	if len(batch) == 0 || stop {
		delete(ps.m, key)
	}
	return batch
}
