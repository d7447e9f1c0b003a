package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/raft"
)

// Voters. Every commit waits for a majority of the raft voters, so a
// large cluster should not make every node a voter: five ride out two
// failures, and more only add fsyncs to wait for. The cluster setting
// MaxVoters (fsm.Settings.Voters, default 5) caps them. A node that
// joins beyond the cap is a non-voter: it receives the log and serves
// clients like any node, but does not count towards a quorum. The
// leader keeps the voter set full and alive (voterUpkeep):
//
//   - while there are fewer voters than the cap, it promotes a healthy
//     non-voter;
//   - a voter down past RepairGrace is demoted when a healthy non-voter
//     can take its place, so that a cluster of many nodes does not lose
//     its quorum to a few dead voters;
//   - beyond the cap (the setting lowered), it demotes voters, down ones
//     first, never itself.
//
// One change per round, each a raft configuration change that needs the
// current quorum; a demoted node that comes back is promoted again only
// when a voter is missing.

// DefaultVoterUpkeepInterval is how often the leader checks the voters.
const DefaultVoterUpkeepInterval = 10 * time.Second

// voterLoop runs voterUpkeep every interval until ctx ends.
func (n *Node) voterLoop(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		if n.IsLeader() {
			if err := n.voterUpkeep(); err != nil {
				n.log.Warn("voter upkeep", "err", err)
			}
		}
	})
}

// voterUpkeep makes at most one change towards a full, live voter set.
func (n *Node) voterUpkeep() error {
	settings, err := n.state.Settings()
	if err != nil {
		return err
	}
	live, err := n.liveness()
	if err != nil {
		return err
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	var voters, downVoters, candidates []raft.Server
	for _, s := range cf.Configuration().Servers {
		id := string(s.ID)
		switch {
		case s.Suffrage == raft.Voter:
			voters = append(voters, s)
			if !live.alive[id] {
				downVoters = append(downVoters, s)
			}
		case s.Suffrage == raft.Nonvoter && live.alive[id] && n.health.ok(id):
			candidates = append(candidates, s)
		}
	}
	max := settings.Voters()
	switch {
	case len(voters) < max && len(candidates) > 0:
		return n.promote(candidates[0])
	case len(voters) > max:
		victims := append(slices.Clone(downVoters), voters...)
		for _, v := range victims {
			if string(v.ID) != n.cfg.ID {
				return n.demote(v, "over the voter cap")
			}
		}
	case len(downVoters) > 0 && len(candidates) > 0 && string(downVoters[0].ID) != n.cfg.ID:
		return n.demote(downVoters[0], "down past the repair grace, with a non-voter to take its place")
	}
	return nil
}

func (n *Node) promote(s raft.Server) error {
	if err := n.raft.AddVoter(s.ID, s.Address, 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("promote %s: %w", s.ID, n.raftErr(err))
	}
	n.log.Info("non-voter promoted to voter", "id", s.ID)
	return nil
}

func (n *Node) demote(s raft.Server, why string) error {
	if err := n.raft.DemoteVoter(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("demote %s: %w", s.ID, n.raftErr(err))
	}
	n.log.Info("voter demoted", "id", s.ID, "why", why)
	return nil
}

// addJoiner adds a joining node as a voter while the voters are
// fewer than the cap, else as a non-voter.
func (n *Node) addJoiner(id raft.ServerID, addr raft.ServerAddress, servers []raft.Server) error {
	settings, err := n.state.Settings()
	if err != nil {
		return err
	}
	voters := 0
	for _, s := range servers {
		if s.Suffrage == raft.Voter && s.ID != id {
			voters++
		}
	}
	if voters >= settings.Voters() {
		if err := n.raft.AddNonvoter(id, addr, 0, n.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("add non-voter %s: %w", id, n.raftErr(err))
		}
		n.log.Info("node joined as a non-voter", "id", id, "cluster_addr", addr, "voters", voters)
		return nil
	}
	if err := n.raft.AddVoter(id, addr, 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("add voter %s: %w", id, n.raftErr(err))
	}
	n.log.Info("node joined", "id", id, "cluster_addr", addr)
	return nil
}
