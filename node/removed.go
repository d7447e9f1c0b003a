package node

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/hashicorp/raft"
)

// ErrRemoved: this node is no longer in the raft configuration it holds
// (it was removed while it ran). No leader answers it any more, so a
// read barrier or a forwarded write through it would wait for ever; the
// admin API refuses them at once instead (503: another node answers).
var ErrRemoved = errors.New("removed from the cluster")

// removedError is ErrRemoved naming the node and what to do.
type removedError struct{ id string }

func (e removedError) Error() string {
	return fmt.Sprintf("%s was removed from the cluster: send requests to a member's admin address (cluster status here lists them), "+
		"and stop %s or take it back in with cluster join through a member", e.id, e.id)
}

func (e removedError) Is(target error) bool { return target == ErrRemoved }

// removedErr is a removedError while this node is left out of its own
// configuration; nil otherwise.
func (n *Node) removedErr() error {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil || !n.leftOut(cf.Configuration().Servers) {
		return nil
	}
	return removedError{id: n.cfg.ID}
}

// removedNow is removedErr for paths that must answer at once and not
// cost members a round through raft (a barrier or write before it goes
// to the leader, RCPT answered from the local state, a delivery before
// it stores its body). A node left out of the configuration it holds is
// removed when it knows no leader, or when it has held one that listed
// it since it started (wasMember): then the configuration that leaves
// it out is its own removal, committed or on its way. Until it loses its
// leader, a heartbeat timeout or more after the removal, it still
// follows the old leader, through which a barrier would get an index it
// never reaches and a write would commit and then be waited for in vain.
// The leader stops replicating to a server once it has sent it the
// entry that removes it, so the removed node may never learn that the
// entry committed, and cannot wait for that.
//
// A node that joins is left out of the configurations it holds until
// its join entry reaches it, and is not removed: a fresh node holds none
// at first, then, as it catches up, those before its join, of which it
// has held none that lists it (wasMember is false).
//
// raft's configuration future carries no index here (GetConfiguration
// leaves it 0), so nothing below may compare one.
func (n *Node) removedNow() error {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil || !n.leftOut(cf.Configuration().Servers) {
		return nil
	}
	if addr, _ := n.raft.LeaderWithID(); addr != "" && !n.wasMember.Load() {
		return nil
	}
	return removedError{id: n.cfg.ID}
}

// noteConfiguration notes a configuration that this node holds at start
// or has applied.
func (n *Node) noteConfiguration(cf raft.Configuration) {
	if slices.ContainsFunc(cf.Servers, func(s raft.Server) bool { return string(s.ID) == n.cfg.ID }) {
		n.wasMember.Store(true)
	}
}

// refuseIfRemoved answers a request to a removed node with ErrRemoved.
// Only cluster status still runs there: it says the node was removed,
// and shows the cluster as the members answer. The token is checked
// first (adminRoute), so a stranger learns nothing of it.
func (n *Node) refuseIfRemoved(pattern string, h func(*http.Request) (any, error)) func(*http.Request) (any, error) {
	if pattern == "GET /v1/cluster/status" {
		return h
	}
	return func(r *http.Request) (any, error) {
		if err := n.removedErr(); err != nil {
			return nil, err
		}
		return h(r)
	}
}

// refuseStreamIfRemoved is refuseIfRemoved for the streaming routes
// (export, restore, raw messages, verify).
func (n *Node) refuseStreamIfRemoved(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := n.removedErr(); err != nil {
			writeError(w, err)
			return
		}
		h(w, r)
	}
}
