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

// voterCluster starts size nodes that check their voters often, and
// promote a non-voter after stable of health.
func voterCluster(t *testing.T, size int) (*testCluster, *Node) {
	return voterClusterStable(t, size, 300*time.Millisecond)
}

func voterClusterStable(t *testing.T, size int, stable time.Duration) (*testCluster, *Node) {
	c := newTestClusterWith(t, size, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RepairGrace = 2 * time.Second
		cfg.VoterUpkeepInterval = 200 * time.Millisecond
		cfg.VoterStabilization = stable
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

// A non-voter is promoted only after it has stayed healthy for the
// stabilization time, not at the first upkeep that sees it.
func TestVoterPromotionWaitsForStability(t *testing.T) {
	c, l := voterClusterStable(t, 3, 4*time.Second)
	setMaxVoters(t, l, 3)
	n4 := c.start("n4", false, l.AdminAddr())
	joined := time.Now()
	setMaxVoters(t, l, 5)
	// n4 keeps up (it has the new cap), so only the wait holds it back.
	waitFor(t, 3*time.Second, "n4 applies the cap", func() bool {
		st, err := n4.State().Settings()
		return err == nil && st.MaxVoters == 5
	})
	time.Sleep(time.Until(joined.Add(time.Second))) // upkeeps every 200 ms see n4 healthy
	if v, nv := suffrages(t, l); len(v) != 3 || !slices.Equal(nv, []string{"n4"}) {
		t.Fatalf("%v after the join: voters %v, non-voters %v; promoted before the stabilization time", time.Since(joined), v, nv)
	}
	waitFor(t, 15*time.Second, "n4 promoted once stable", func() bool {
		v, _ := suffrages(t, l)
		return slices.Contains(v, "n4")
	})
}

// Health must be unbroken: a round without a non-voter, a restart (a
// new start time) or a new term starts its time again, and only those
// healthy for long enough are returned.
func TestVoterHealthNeedsAnUnbrokenRun(t *testing.T) {
	var h voterHealth
	a, b := raft.Server{ID: "a"}, raft.Server{ID: "b"}
	t0 := time.Unix(1000, 0)
	life1 := map[raft.ServerID]time.Time{"a": t0, "b": t0}
	life2 := map[raft.ServerID]time.Time{"a": t0, "b": t0.Add(12 * time.Second)} // b restarted
	ids := func(ss []raft.Server) []raft.ServerID {
		var out []raft.ServerID
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	steps := []struct {
		at      time.Duration
		term    uint64
		healthy []raft.Server
		started map[raft.ServerID]time.Time
		want    []raft.ServerID
	}{
		{0, 1, []raft.Server{a, b}, life1, nil},
		{5 * time.Second, 1, []raft.Server{a}, life1, nil}, // b missed a round
		{10 * time.Second, 1, []raft.Server{a, b}, life1, []raft.ServerID{"a"}},
		{15 * time.Second, 1, []raft.Server{a, b}, life2, []raft.ServerID{"a"}}, // b's new life starts now
		{20 * time.Second, 1, []raft.Server{a, b}, life2, []raft.ServerID{"a"}},
		{25 * time.Second, 1, []raft.Server{a, b}, life2, []raft.ServerID{"a", "b"}},
		{30 * time.Second, 2, []raft.Server{a, b}, life2, nil}, // a new term: seen afresh
	}
	for _, st := range steps {
		if got := ids(h.observe(st.term, st.healthy, st.started, t0.Add(st.at), 10*time.Second)); !slices.Equal(got, st.want) {
			t.Fatalf("at %v: %v, want %v", st.at, got, st.want)
		}
	}
	h.forget()
	if got := h.observe(2, []raft.Server{a}, life1, t0.Add(45*time.Second), 10*time.Second); len(got) != 0 {
		t.Fatalf("after forget: %v", ids(got))
	}
}

// A join for a node that does not answer (a mistyped address, or a node
// joined from the CLI before it was started) adds a non-voter, even with
// room under the cap: a phantom voter would cost the quorum a failure.
func TestJoinOfASilentNodeAddsANonVoter(t *testing.T) {
	_, l := voterCluster(t, 3)
	ctx := ctxT(t, 20*time.Second)
	if err := l.Join(ctx, JoinRequest{ID: "n9", ClusterAddr: "127.0.0.1:1", AdminAddr: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	voters, nonvoters := suffrages(t, l)
	if slices.Contains(voters, "n9") || !slices.Contains(nonvoters, "n9") {
		t.Fatalf("voters %v, non-voters %v: want n9 a non-voter", voters, nonvoters)
	}
	time.Sleep(time.Second) // several upkeeps: still not promoted
	if voters, _ := suffrages(t, l); slices.Contains(voters, "n9") {
		t.Fatalf("a node that never answered was promoted: voters %v", voters)
	}
}

// A node that does not answer as itself, or whose release cannot read the
// cluster's encoding (from 4 on), is not made a voter at its join: it
// would stop at its first such entry and leave a dead voter.
func TestVotableJoiner(t *testing.T) {
	at3 := fsm.Settings{CommandEncoding: fsm.EncodingJSON3}
	at4 := fsm.Settings{CommandEncoding: fsm.EncodingJSON4}
	for _, tc := range []struct {
		ms   MemberStatus
		s    fsm.Settings
		want bool
	}{
		{MemberStatus{ID: "n4", Reads: fsm.NewestEncoding}, at4, true},
		{MemberStatus{ID: "n4"}, at4, false}, // a release before 4
		{MemberStatus{ID: "n4"}, at3, true},  // below 4 any release may vote
		{MemberStatus{ID: "n5", Reads: fsm.NewestEncoding}, at4, false},
	} {
		if got := votable(tc.ms, "n4", tc.s); got != tc.want {
			t.Errorf("%+v under encoding %d: votable %v, want %v", tc.ms, tc.s.CommandEncoding, got, tc.want)
		}
	}
}
