package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// The raft side of a removal: an operator's (`cluster remove`), and the
// one a join makes when it replaces a server (same ID at another
// address, or another ID at its address). Each is decided on a fresh
// view of the configuration taken just before raft's change, and made
// conditional on it (raft's prevIndex, configindex.go), as voter upkeep's
// changes are: a change that lands between the decision and the removal
// (an upkeep promotion or demotion, another join or removal) makes raft
// refuse it instead of applying it to a configuration it was not decided
// on. A refused removal is decided again on a fresh view, after a
// barrier (so this node's configuration index is raft's unless yet
// another change lands), up to removeAttempts times; after that it
// fails with ErrConfigurationChanged, a temporary failure, having
// changed nothing.

// removeAttempts is how many times a removal is decided before it gives
// up. Each concurrent change can refuse one attempt.
const removeAttempts = 4

// notRemovedError marks a removal's failure after which the server is
// certainly still in raft's configuration: nothing was proposed, or raft
// refused the change before appending it. Only then does a removal put
// back the member record it took out first; after a failure whose
// outcome is unknown (leadership lost after proposing, a timeout) the
// server may be gone, and a record put back would make it look a member.
type notRemovedError struct{ err error }

func (e *notRemovedError) Error() string { return e.err.Error() }
func (e *notRemovedError) Unwrap() error { return e.err }

func notRemoved(err error) error {
	if err == nil {
		return nil
	}
	return &notRemovedError{err: err}
}

// quorumWithout refuses the removal of id when the voters of view v that
// answered, without id, are no majority of the voters that stay:
// removing a live voter while another is down would leave a cluster that
// cannot commit (not even the removal's own completion) until the down
// one returns. A non-voter counts towards no quorum.
func quorumWithout(v voterView, id string) error {
	if !slices.ContainsFunc(v.voters, func(s raft.Server) bool { return string(s.ID) == id }) {
		return nil
	}
	stay := len(v.voters) - 1
	if up := v.reachable(raft.ServerID(id)); stay == 0 || up < stay/2+1 {
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf(
			"removing %s would leave no quorum: %d of the %d voters that stay answer; bring a voter back first, or remove it with --force", id, up, stay)}
	}
	return nil
}

// removeServer takes id out of raft's configuration for an operator's
// removal whose member record is already gone. Forced, it does so
// without condition: nothing was checked that a change could undo.
// Otherwise each attempt is decided on a fresh view (removeServerOn),
// and one refused because the configuration changed is decided again
// after the bodies are looked at once more (removalKeepsBodies with the
// first look's findings): the change that refused it may be another
// removal, of a member whose copies the checks counted.
func (n *Node) removeServer(ctx context.Context, id string, force bool, verified *verifiedCopies) error {
	if force {
		return n.raftRemove(raft.ServerID(id), 0)
	}
	for attempt := 1; ; attempt++ {
		err := n.removeServerOn(ctx, id)
		if !errors.Is(err, ErrConfigurationChanged) {
			return err
		}
		n.log.Info("removal refused: the configuration changed since it was decided", "id", id, "attempt", attempt, "err", err)
		if attempt == removeAttempts {
			return notRemoved(fmt.Errorf("remove %s: the raft configuration changed under each of %d attempts; nothing was removed, try again: %w",
				id, attempt, err))
		}
		if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
			// The removal was refused, so the server is still there.
			return notRemoved(fmt.Errorf("catch up before deciding the removal of %s again: %w", id, n.raftErr(err)))
		}
		if _, err := n.removalKeepsBodies(ctx, id, verified); err != nil {
			return notRemoved(err)
		}
	}
}

// removeServerOn decides the removal of id on a fresh view: the quorum
// check on the configuration as it is now and the voters that answer
// now, the removal conditional on that configuration. An id that is no
// longer in it was removed by another request meanwhile: done.
func (n *Node) removeServerOn(ctx context.Context, id string) error {
	v, err := n.viewVoters(ctx)
	if err != nil {
		return notRemoved(fmt.Errorf("read configuration: %w", err))
	}
	if !slices.ContainsFunc(v.servers, func(s raft.Server) bool { return string(s.ID) == id }) {
		n.log.Info("node to remove already left the configuration", "id", id)
		return nil
	}
	if err := quorumWithout(v, id); err != nil {
		return notRemoved(err)
	}
	if n.beforeConfigRemoval != nil {
		n.beforeConfigRemoval(raft.ServerID(id))
	}
	return n.raftRemove(raft.ServerID(id), v.index)
}

// raftRemove asks raft to remove server id, conditional on the
// configuration at index (0: none). Raft's refusal because the
// configuration changed is ErrConfigurationChanged. The refusals raft
// makes before it appends the change leave the server in place
// (notRemovedError): that one, not leading, a leadership transfer under
// way, and a request that was not taken within ApplyTimeout (raft takes
// one only once the previous change committed).
func (n *Node) raftRemove(id raft.ServerID, index uint64) error {
	err := n.raft.RemoveServer(id, index, n.cfg.ApplyTimeout).Error()
	if err == nil {
		return nil
	}
	wrapped := fmt.Errorf("remove %s: %w", id, configChanged(n.raftErr(err)))
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout) || errors.Is(wrapped, ErrConfigurationChanged) {
		return notRemoved(wrapped)
	}
	return wrapped
}

// replaceForJoin removes the servers a join replaces: the joiner's ID at
// another address, and another ID at its address. It refuses, changing
// nothing, when one of them still answers there as itself (a mistyped
// address must not evict a live member), or when its removal would cost
// the quorum. Each removal is decided on a fresh view and conditional on
// it; a refused one is decided again, the view included, after a
// barrier: a concurrent join may have put a live member in the place
// the stale view saw empty.
func (n *Node) replaceForJoin(ctx context.Context, req JoinRequest) error {
	for attempt := 1; ; attempt++ {
		err := n.replaceOn(ctx, req)
		if !errors.Is(err, ErrConfigurationChanged) {
			return err
		}
		n.log.Info("join's replacement refused: the configuration changed since it was decided", "id", req.ID, "attempt", attempt, "err", err)
		if attempt == removeAttempts {
			return fmt.Errorf("join %s at %s: the raft configuration changed under each of %d attempts to replace the server there; nothing was changed, try again: %w",
				req.ID, req.ClusterAddr, attempt, err)
		}
		if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("catch up before deciding the join of %s again: %w", req.ID, n.raftErr(err))
		}
	}
}

// replaceOn removes, one at a time, each server the join replaces on the
// configuration as it is then.
func (n *Node) replaceOn(ctx context.Context, req JoinRequest) error {
	for {
		// Most joins replace nothing: they need no probe of every server.
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			return fmt.Errorf("read configuration: %w", err)
		}
		if !slices.ContainsFunc(cf.Configuration().Servers, func(s raft.Server) bool {
			return (string(s.ID) == req.ID) != (string(s.Address) == req.ClusterAddr)
		}) {
			return nil
		}
		v, err := n.viewVoters(ctx)
		if err != nil {
			return fmt.Errorf("read configuration: %w", err)
		}
		var replace []raft.Server
		for _, s := range v.servers {
			sameID, sameAddr := string(s.ID) == req.ID, string(s.Address) == req.ClusterAddr
			if sameID == sameAddr {
				continue
			}
			// A relayed answer from another member is no sign of s
			// (viewVoters checks the name): a node that moved, or was
			// wiped and set up again under a new ID, no longer answers
			// there as s.
			if v.answering[s.ID] {
				return &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf(
					"%s at %s still answers: remove it first (cluster remove %s) if it is to be replaced", s.ID, s.Address, s.ID)}
			}
			replace = append(replace, s)
		}
		if len(replace) == 0 {
			return nil
		}
		s := replace[0]
		if err := quorumWithout(v, string(s.ID)); err != nil {
			return err
		}
		if n.beforeConfigRemoval != nil {
			n.beforeConfigRemoval(s.ID)
		}
		if err := n.raftRemove(s.ID, v.index); err != nil {
			return fmt.Errorf("replace %s: %w", s.ID, err)
		}
		n.log.Info("server replaced by a join", "old", s.ID, "old_addr", s.Address, "new", req.ID, "addr", req.ClusterAddr)
	}
}

// restoreRecord puts back the member record a refused removal took out,
// and returns the refusal, err. It does so only while id is still in
// raft's configuration (the latest, which on the leader includes a
// change not yet committed): a refusal for a changed configuration does
// not say id is still there, as the change may be another removal of id
// (an operator's --force, a join replacing it) or of a member whose
// copies the body checks counted. A record put back for a server out of
// the configuration would stay for good: deliveries could name it a
// replica, repair count its copies. recordMu orders the check and the
// put-back with dropRestoredRecord, which the other removal runs once
// raft's change is made.
func (n *Node) restoreRecord(ctx context.Context, id string, record *fsm.Member, err error) error {
	if record == nil {
		return err
	}
	put, rerr := n.putRecordRetrying(ctx, *record)
	switch {
	case rerr != nil:
		return fmt.Errorf("%w (and restoring the member record of %s failed: %v)", err, id, rerr)
	case !put:
		n.log.Info("member record not restored: the node left the configuration meanwhile", "id", id)
	}
	return err
}

// putRecordRetrying is putRecordIfMember, tried again for up to
// ApplyTimeout after a temporary failure (the refusal that is being
// undone may itself be one: a leadership transfer under way refuses
// the record's write as it refused the removal). The write is
// idempotent, so one whose outcome was unknown may be made again.
func (n *Node) putRecordRetrying(ctx context.Context, m fsm.Member) (bool, error) {
	deadline := time.Now().Add(n.cfg.ApplyTimeout)
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		put, err := n.putRecordIfMember(ctx, m)
		if err == nil || time.Now().After(deadline) ||
			!(errors.Is(err, ErrIndeterminate) || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader)) {
			return put, err
		}
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
}

// putRecordIfMember writes member record m if m's server is in raft's
// latest configuration, under recordMu; put says whether it was.
func (n *Node) putRecordIfMember(ctx context.Context, m fsm.Member) (put bool, err error) {
	n.recordMu.Lock()
	defer n.recordMu.Unlock()
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return false, fmt.Errorf("read configuration: %w", err)
	}
	if !slices.ContainsFunc(cf.Configuration().Servers, func(s raft.Server) bool { return string(s.ID) == m.ID }) {
		return false, nil
	}
	if _, err := n.Apply(ctx, &fsm.MemberSet{Member: m}); err != nil {
		return false, err
	}
	return true, nil
}

// dropRestoredRecord takes out id's member record once id left raft's
// configuration, if it is there: a refused removal of id (restoreRecord),
// or a join of id, may have put it back after this removal took it out
// and before raft's change. Its failure leaves the removal made; it is
// logged.
func (n *Node) dropRestoredRecord(ctx context.Context, id string) {
	if err := n.removeRecordLocked(ctx, id); err != nil {
		n.log.Warn("removing the member record of a node that left the configuration failed", "id", id, "err", err)
	}
}

// removeRecordLocked removes id's member record, if it has one, under
// recordMu (restoreRecord).
func (n *Node) removeRecordLocked(ctx context.Context, id string) error {
	n.recordMu.Lock()
	defer n.recordMu.Unlock()
	m, err := n.memberRecord(id)
	if err != nil || m == nil {
		return err
	}
	_, err = n.Apply(ctx, &fsm.MemberRemove{ID: id})
	return err
}
