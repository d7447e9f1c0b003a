package node

import (
	"errors"
	"fmt"
	"net/http"
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

// removedNow is removedErr for paths that must not cost members a
// round through raft (RCPT answered from the local state, a delivery
// before it stores its body): a removed node knows no leader once a
// heartbeat timeout has passed, so the configuration is read only then.
// Within that timeout it still follows the old leader, which answers
// its reads and commits its writes.
func (n *Node) removedNow() error {
	if addr, _ := n.raft.LeaderWithID(); addr != "" {
		return nil
	}
	return n.removedErr()
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
