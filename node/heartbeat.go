package node

import (
	"sync"

	"github.com/hashicorp/raft"
)

// hashicorp/raft (1.7.3) handles a heartbeat on the transport's connection
// goroutine, not on its own: raft's Shutdown does not wait for it. A
// heartbeat from a leader of a newer term saves that term to the raft
// log store, so one that arrived just as the node stopped could write to
// the store after close had shut it, and raft panics on that error
// ("failed to save current term: database not open"), taking the process
// down on its way out. heartbeatGate lets close wait for the heartbeats
// under way and refuse later ones before the stores are closed.
type heartbeatGate struct {
	mu     sync.RWMutex
	closed bool
}

// wrap runs cb for each heartbeat until close; after it, heartbeats get
// ErrTransportShutdown.
func (g *heartbeatGate) wrap(cb func(raft.RPC)) func(raft.RPC) {
	return func(rpc raft.RPC) {
		g.mu.RLock()
		defer g.mu.RUnlock()
		if g.closed {
			rpc.Respond(nil, raft.ErrTransportShutdown)
			return
		}
		cb(rpc)
	}
}

// close waits for the heartbeats under way, and refuses the rest.
func (g *heartbeatGate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// SetHeartbeatHandler gives the transport raft's heartbeat handler behind
// the gate.
func (t *raftTransport) SetHeartbeatHandler(cb func(raft.RPC)) {
	t.NetworkTransport.SetHeartbeatHandler(t.heartbeats.wrap(cb))
}
