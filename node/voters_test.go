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

// Beyond the voter cap a node joins as a non-voter; when a voter stays
// down past the grace, the leader demotes it and promotes the healthy
// non-voter; a lowered cap demotes voters, never the leader.
func TestVoterCapAndReplacement(t *testing.T) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RepairGrace = 2 * time.Second
		cfg.VoterUpkeepInterval = 200 * time.Millisecond
	})
	l := c.leader(5 * time.Second)
	set := func(max int) {
		t.Helper()
		mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.NewestEncoding, MaxVoters: max}})
	}
	set(3)
	c.start("n4", false, l.AdminAddr())
	if v, nv := suffrages(t, l); !slices.Equal(v, []string{"n1", "n2", "n3"}) || !slices.Equal(nv, []string{"n4"}) {
		t.Fatalf("after n4 joined: voters %v, non-voters %v", v, nv)
	}
	// n4 follows the log like any node.
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	waitFor(t, 10*time.Second, "n4 applies", func() bool { _, err := c.nodes["n4"].State().Domain("example.com"); return err == nil })

	var victim *Node
	for _, id := range []string{"n1", "n2", "n3"} {
		if c.nodes[id] != l {
			victim = c.nodes[id]
			break
		}
	}
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
