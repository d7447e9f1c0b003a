package node

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// suffrages is the leader's raft configuration as voter and non-voter
// IDs, each sorted.
func suffrages(t *testing.T, l *Node) (voters, nonvoters []string) {
	t.Helper()
	cf := l.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters = append(voters, string(s.ID))
		} else {
			nonvoters = append(nonvoters, string(s.ID))
		}
	}
	slices.Sort(voters)
	slices.Sort(nonvoters)
	return voters, nonvoters
}

// voterCluster starts size nodes that check their voters often.
func voterCluster(t *testing.T, size int) (*testCluster, *Node) {
	c := newTestClusterWith(t, size, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RepairGrace = 2 * time.Second
		cfg.VoterUpkeepInterval = 200 * time.Millisecond
	})
	return c, c.leader(5 * time.Second)
}

func setMaxVoters(t *testing.T, l *Node, max int) {
	t.Helper()
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.NewestEncoding, MaxVoters: max}})
}

// followers are up to k of c's nodes other than l.
func followers(c *testCluster, l *Node, k int) []*Node {
	var out []*Node
	for _, id := range []string{"n1", "n2", "n3", "n4", "n5"} {
		if n := c.nodes[id]; n != nil && n != l && len(out) < k {
			out = append(out, n)
		}
	}
	return out
}

// Beyond the voter cap a node joins as a non-voter; when a voter stays
// down past the grace, the leader demotes it and promotes the healthy
// non-voter; a lowered cap demotes voters, never the leader.
func TestVoterCapAndReplacement(t *testing.T) {
	c, l := voterCluster(t, 3)
	set := func(max int) { t.Helper(); setMaxVoters(t, l, max) }
	set(3)
	c.start("n4", false, l.AdminAddr())
	if v, nv := suffrages(t, l); !slices.Equal(v, []string{"n1", "n2", "n3"}) || !slices.Equal(nv, []string{"n4"}) {
		t.Fatalf("after n4 joined: voters %v, non-voters %v", v, nv)
	}
	// n4 follows the log like any node.
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	waitFor(t, 10*time.Second, "n4 applies", func() bool { _, err := c.nodes["n4"].State().Domain("example.com"); return err == nil })

	victim := followers(c, l, 1)[0]
	victim.Kill()
	delete(c.nodes, victim.ID())
	waitFor(t, 15*time.Second, "the non-voter promoted in the dead voter's place", func() bool {
		v, nv := suffrages(t, l)
		return len(v) == 3 && !slices.Contains(v, victim.ID()) && slices.Contains(v, "n4") && slices.Equal(nv, []string{victim.ID()})
	})
	mustApply(t, l, &fsm.DomainAdd{Name: "example.net"}) // the new quorum commits
	// A dead non-voter still holds replicas: the cluster is not healthy.
	if st, err := l.Status(ctxT(t, 5*time.Second)); err != nil || st.Health != "degraded" {
		t.Fatalf("status with a dead non-voter: %q %v, want degraded", st.Health, err)
	}

	set(1)
	waitFor(t, 15*time.Second, "voters down to the cap", func() bool {
		v, _ := suffrages(t, l)
		return slices.Equal(v, []string{l.ID()})
	})
	if !l.IsLeader() {
		t.Fatal("the leader demoted itself")
	}
	if _, err := l.Apply(ctxT(t, 5*time.Second), &fsm.DomainAdd{Name: "example.org"}); err != nil {
		t.Fatalf("a one-voter cluster cannot commit: %v", err)
	}
}

// Lowering the cap while voters are down demotes the silent ones first,
// so the quorum survives: five voters, two dead, cap 3.
func TestVoterCapLoweredWithVotersDown(t *testing.T) {
	c, l := voterCluster(t, 5)
	var dead []string
	for _, n := range followers(c, l, 2) {
		n.Kill()
		delete(c.nodes, n.ID())
		dead = append(dead, n.ID())
	}
	setMaxVoters(t, l, 3) // at once: the dead are not yet past the grace
	waitFor(t, 15*time.Second, "the dead voters demoted", func() bool {
		v, nv := suffrages(t, l)
		slices.Sort(dead)
		return len(v) == 3 && slices.Equal(nv, dead)
	})
	if _, err := l.Apply(ctxT(t, 5*time.Second), &fsm.DomainAdd{Name: "example.com"}); err != nil {
		t.Fatalf("the three live voters cannot commit: %v", err)
	}
}

// A non-voter that does not answer is never promoted, even with room
// under the cap: it could not help a quorum.
func TestDeadNonVoterNotPromoted(t *testing.T) {
	c, l := voterCluster(t, 3)
	setMaxVoters(t, l, 3)
	n4 := c.start("n4", false, l.AdminAddr())
	n4.Kill()
	delete(c.nodes, "n4")
	setMaxVoters(t, l, 5)
	time.Sleep(1500 * time.Millisecond) // several rounds
	if v, nv := suffrages(t, l); len(v) != 3 || !slices.Equal(nv, []string{"n4"}) {
		t.Fatalf("voters %v, non-voters %v: a dead non-voter was promoted", v, nv)
	}
	if _, err := l.Apply(ctxT(t, 5*time.Second), &fsm.DomainAdd{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
}
