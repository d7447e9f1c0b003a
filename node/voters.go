package node

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// Voters. Every commit waits for a majority of the raft voters, so a
// large cluster should not make every node a voter: five ride out two
// failures, and more only add fsyncs to wait for. The cluster setting
// MaxVoters (fsm.Settings.Voters; 5 in a new cluster, no cap in one
// created before it) caps them. A node that joins beyond the cap is a
// non-voter: it receives the log and serves clients like any node, but
// does not count towards a quorum. The leader keeps the voter set full
// and alive (voterUpkeep), one configuration change per round:
//
//   - while there are fewer voters than the cap, it promotes a non-voter
//     that answers now and has applied nearly all the log, and has at
//     every upkeep for VoterStabilization (a crash-looping node is not
//     promoted in one of its short lives);
//   - a voter down past RepairGrace that does not answer now is demoted
//     when such a non-voter can take its place;
//   - beyond the cap (the setting lowered), it demotes voters, those that
//     do not answer first, never itself.
//
// A node that joins while voters are fewer than the cap becomes a voter
// at once, without the stabilization time, if it answers as itself: that
// is how a cluster forms. One that does not answer (a mistyped address,
// a node joined from the CLI before it was started) joins as a non-voter
// and is promoted like any other.
//
// Invariant: a change is made only if the voters that answered a probe
// made for this round form a majority of the configuration it leads to,
// so no promotion or demotion by itself costs the quorum. Each change is
// conditional on the configuration it was decided on: it carries the
// index of the newest committed configuration this node has applied
// (configindex.go), read before the configuration, and raft refuses it
// if its latest configuration is at another index (an operator's join
// or removal landed during the probes). A refused change is decided
// again at the next round. While that index is unknown (0: no
// configuration applied since the node started, and no snapshot) the
// upkeep makes no change (a join or a removal still may, unconditionally, as raft
// treats 0).

// DefaultVoterUpkeepInterval is how often the leader checks the voters.
const DefaultVoterUpkeepInterval = 10 * time.Second

// DefaultVoterStabilization is how long a non-voter must have been
// healthy at every upkeep before it is promoted.
const DefaultVoterStabilization = 20 * time.Second

// voterHealth is when the leader first saw each non-voter answer and
// keep up, in an unbroken run of upkeeps of one process life (a node's
// start time, from its probe, tells a restart between two upkeeps). It
// is the leader's own observation: forgotten when it stops leading.
type voterHealth struct {
	mu    sync.Mutex
	term  uint64 // the leader's term of these observations
	since map[raft.ServerID]healthRun
}

type healthRun struct {
	since   time.Time
	started time.Time // the node's start, as it reported it
}

// observe records this round's healthy non-voters, with the start time
// each reported, forgets the rest, and returns those healthy for at
// least stable. Runs seen in an earlier term are not carried over: the
// leader may have lost and regained leadership between two upkeeps.
func (h *voterHealth) observe(term uint64, healthy []raft.Server, started map[raft.ServerID]time.Time, now time.Time, stable time.Duration) []raft.Server {
	h.mu.Lock()
	defer h.mu.Unlock()
	if term != h.term {
		h.term, h.since = term, nil
	}
	next := make(map[raft.ServerID]healthRun, len(healthy))
	var out []raft.Server
	for _, s := range healthy {
		run, seen := h.since[s.ID]
		if !seen || !run.started.Equal(started[s.ID]) {
			run = healthRun{since: now, started: started[s.ID]}
		}
		next[s.ID] = run
		if now.Sub(run.since) >= stable {
			out = append(out, s)
		}
	}
	h.since = next
	return out
}

func (h *voterHealth) forget() {
	h.mu.Lock()
	h.since = nil
	h.mu.Unlock()
}

// voterCatchUp is how far behind the leader's applied index a non-voter
// may be and still be promoted.
const voterCatchUp = 1024

// voterCap is the cap the settings put on voters.
func voterCap(s fsm.Settings) int {
	if s.MaxVoters == 0 {
		return math.MaxInt // a cluster from before the setting: no cap
	}
	return s.MaxVoters
}

// voterLoop runs voterUpkeep every interval until ctx ends.
func (n *Node) voterLoop(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		if !n.IsLeader() {
			n.voterHealth.forget()
			return
		}
		if err := n.voterUpkeep(ctx); err != nil {
			n.log.Warn("voter upkeep", "err", err)
		}
	})
}

// voterView is one round's view of the configuration, from a fresh probe.
type voterView struct {
	index      uint64        // of the configuration
	servers    []raft.Server // every server in it
	voters     []raft.Server
	answering  map[raft.ServerID]bool // answered the probe (this node too)
	candidates []raft.Server          // non-voters answering and caught up, for long enough
}

// reachable counts the answering voters, leaving out skip.
func (v voterView) reachable(skip raft.ServerID) int {
	k := 0
	for _, s := range v.voters {
		if s.ID != skip && v.answering[s.ID] {
			k++
		}
	}
	return k
}

// voterUpkeep makes at most one change towards a full, live voter set.
func (n *Node) voterUpkeep(ctx context.Context) error {
	settings, err := n.state.Settings()
	if err != nil {
		return err
	}
	max := voterCap(settings)
	if !n.voterWork(max) {
		n.voterHealth.forget() // no non-voter: a later one starts afresh
		return nil             // the usual case: nothing to probe for
	}
	v, err := n.viewVoters(ctx)
	if err != nil {
		return err
	}
	err = n.voterChange(max, v)
	if errors.Is(err, ErrConfigurationChanged) {
		n.log.Info("voter change refused: the configuration changed since it was decided; deciding again next round", "err", err)
		return nil
	}
	return err
}

// voterChange makes the change view v calls for under the cap max, if
// any, conditional on v's configuration.
func (n *Node) voterChange(max int, v voterView) error {
	if v.index == 0 {
		return nil // no condition to make it on yet: a later round decides
	}
	self := raft.ServerID(n.cfg.ID)
	switch {
	case len(v.voters) < max && len(v.candidates) > 0:
		if v.reachable("")+1 > (len(v.voters)+1)/2 {
			return n.promote(v.index, v.candidates[0])
		}
	case len(v.voters) > max:
		for _, pass := range []bool{false, true} { // silent voters first
			for _, s := range v.voters {
				if s.ID != self && v.answering[s.ID] == pass && v.reachable(s.ID) > (len(v.voters)-1)/2 {
					return n.demote(v.index, s, "over the voter cap")
				}
			}
		}
	case len(v.candidates) > 0:
		for _, s := range v.voters {
			if s.ID != self && !v.answering[s.ID] && n.downPastGrace(string(s.ID)) && v.reachable(s.ID) > (len(v.voters)-1)/2 {
				return n.demote(v.index, s, "down past the repair grace, with a non-voter to take its place")
			}
		}
	}
	return nil
}

// voterWork reports whether the configuration could call for a change:
// there is a non-voter, or more voters than max.
func (n *Node) voterWork(max int) bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	voters := 0
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage != raft.Voter {
			return true
		}
		voters++
	}
	return voters > max
}

// downPastGrace reports whether member id has not answered a storage
// poll for RepairGrace. A server with no member record yet (joining) is
// not judged.
func (n *Node) downPastGrace(id string) bool {
	live, err := n.liveness()
	if err != nil {
		return false
	}
	_, member := live.members[id]
	return member && !live.alive[id]
}

// viewVoters reads the configuration and asks every other server for its
// applied index now, in parallel, each with a short deadline.
func (n *Node) viewVoters(ctx context.Context) (voterView, error) {
	index, cf := n.configuration()
	if err := cf.Error(); err != nil {
		return voterView{}, err
	}
	v := voterView{index: index, answering: map[raft.ServerID]bool{}}
	applied, started := map[raft.ServerID]uint64{}, map[raft.ServerID]time.Time{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	v.servers = cf.Configuration().Servers
	for _, s := range v.servers {
		if s.Suffrage == raft.Voter {
			v.voters = append(v.voters, s)
		}
		if string(s.ID) == n.cfg.ID {
			v.answering[s.ID], applied[s.ID] = true, n.state.Applied()
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var ms MemberStatus
			// Another server's answer, carried there by a relay, is no
			// sign of s (every release's status names its node).
			if err := n.call(cctx, string(s.Address), "GET", "/rpc/stats", nil, &ms); err == nil && ms.ID == string(s.ID) {
				mu.Lock()
				v.answering[s.ID], applied[s.ID], started[s.ID] = true, ms.AppliedIndex, ms.Started
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	mine := n.state.Applied()
	var healthy []raft.Server
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Nonvoter && v.answering[s.ID] && applied[s.ID]+voterCatchUp >= mine {
			healthy = append(healthy, s)
		}
	}
	v.candidates = n.voterHealth.observe(n.raft.CurrentTerm(), healthy, started, time.Now(), n.cfg.VoterStabilization)
	return v, nil
}

// canVote reports whether the node at addr answers as id and reads the
// cluster's command encoding (releases before 4 do not say what they
// read; below 4 any release that answers may vote).
func (n *Node) canVote(ctx context.Context, id raft.ServerID, addr raft.ServerAddress, s fsm.Settings) bool {
	ms, ok := n.probeMember(ctx, addr)
	return ok && votable(ms, id, s)
}

// votable is canVote's judgement of the status a node gave.
func votable(ms MemberStatus, id raft.ServerID, s fsm.Settings) bool {
	return ms.ID == string(id) && (s.CommandEncoding < fsm.EncodingJSON4 || ms.Reads >= s.CommandEncoding)
}

func (n *Node) promote(index uint64, s raft.Server) error {
	if err := n.raft.AddVoter(s.ID, s.Address, index, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("promote %s: %w", s.ID, configChanged(n.raftErr(err)))
	}
	n.log.Info("non-voter promoted to voter", "id", s.ID)
	return nil
}

func (n *Node) demote(index uint64, s raft.Server, why string) error {
	if err := n.raft.DemoteVoter(s.ID, index, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("demote %s: %w", s.ID, configChanged(n.raftErr(err)))
	}
	n.log.Info("voter demoted", "id", s.ID, "why", why)
	return nil
}

// addJoiner adds a joining node as a voter while the voters are fewer
// than the cap and it answers as itself now, else as a non-voter, on the
// configuration as it is now. A voter that does not exist (a mistyped
// address, a node joined from the CLI before it was started) would
// count towards every quorum: with three voters and such a fourth, one
// more failure stops the cluster, and removing the phantom needs the
// quorum it took away. As a non-voter it costs nothing, and voter
// upkeep promotes it once it has answered for VoterStabilization.
//
// The addition is conditional on the configuration it was decided on.
// An operator's join must not fail because that configuration moved: a
// concurrent join landed, or this leader, newly elected, has not yet
// applied the newest configuration it committed. So a refused addition
// is decided again on a fresh view, after a barrier that has this node
// apply every committed entry (its configuration index is then raft's,
// unless yet another change lands). After joinAttempts refusals the
// node is added as a non-voter unconditionally: that never costs the
// quorum (raft keeps a voter of that ID a voter, and a non-voter does
// not count), and voter upkeep promotes it later if there is room.
func (n *Node) addJoiner(ctx context.Context, id raft.ServerID, addr raft.ServerAddress) error {
	for attempt := 1; ; attempt++ {
		err := n.addJoinerOn(ctx, id, addr)
		if !errors.Is(err, ErrConfigurationChanged) {
			return err
		}
		n.log.Info("join refused: the configuration changed since it was decided", "id", id, "attempt", attempt, "err", err)
		if attempt == joinAttempts {
			break
		}
		if err := n.raft.Barrier(n.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("catch up before deciding the join of %s again: %w", id, n.raftErr(err))
		}
	}
	if err := n.raft.AddNonvoter(id, addr, 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("add non-voter %s: %w", id, n.raftErr(err))
	}
	n.log.Info("node joined as a non-voter: the configuration kept changing", "id", id, "cluster_addr", addr)
	return nil
}

// joinAttempts is how many times a join is decided before it falls back
// to an unconditional non-voter. Each concurrent change can refuse one
// attempt.
const joinAttempts = 4

// addJoinerOn decides a join on the configuration as it is now and makes
// it conditional on that configuration.
func (n *Node) addJoinerOn(ctx context.Context, id raft.ServerID, addr raft.ServerAddress) error {
	// (canVote also keeps out, as a voter, a release that cannot read the
	// cluster's encoding: it would stop at its first such entry, a dead
	// voter.)
	settings, err := n.state.Settings()
	if err != nil {
		return err
	}
	index, cf := n.configuration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("read configuration: %w", err)
	}
	voters := 0
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != id {
			voters++
		}
	}
	if voters >= voterCap(settings) || !n.canVote(ctx, id, addr, settings) {
		if err := n.raft.AddNonvoter(id, addr, index, n.cfg.ApplyTimeout).Error(); err != nil {
			return fmt.Errorf("add non-voter %s: %w", id, configChanged(n.raftErr(err)))
		}
		n.log.Info("node joined as a non-voter", "id", id, "cluster_addr", addr, "voters", voters)
		return nil
	}
	if err := n.raft.AddVoter(id, addr, index, n.cfg.ApplyTimeout).Error(); err != nil {
		return fmt.Errorf("add voter %s: %w", id, configChanged(n.raftErr(err)))
	}
	n.log.Info("node joined", "id", id, "cluster_addr", addr)
	return nil
}

// configuration is raft's latest configuration and the index to make a
// change decided on it conditional on. The index is read first: it is
// that of a committed configuration no newer than the one read, so a
// configuration that moved in between makes raft refuse the change
// rather than accept it on an index it does not belong to.
func (n *Node) configuration() (uint64, raft.ConfigurationFuture) {
	index := n.configIndex.load()
	return index, n.raft.GetConfiguration()
}
