package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// A promotion or demotion decided on a view of the configuration is
// refused once the configuration has changed by another path (here an
// operator's join), and made on a fresh view.
func TestVoterChangeOnAStaleViewIsRefused(t *testing.T) {
	_, l := voterCluster(t, 3)
	setMaxVoters(t, l, 5)
	ctx := ctxT(t, 30*time.Second)
	stale, err := l.viewVoters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A silent node joins as a non-voter: the configuration changes.
	if err := l.Join(ctx, JoinRequest{ID: "n9", ClusterAddr: "127.0.0.1:1", AdminAddr: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	var victim raft.Server
	for _, s := range stale.voters {
		if string(s.ID) != l.ID() {
			victim = s
		}
	}
	if err := l.promote(stale.index, raft.Server{ID: "n9", Address: "127.0.0.1:1"}); !errors.Is(err, ErrConfigurationChanged) {
		t.Fatalf("promotion on a stale view: %v, want ErrConfigurationChanged", err)
	}
	if err := l.demote(stale.index, victim, "test"); !errors.Is(err, ErrConfigurationChanged) {
		t.Fatalf("demotion on a stale view: %v, want ErrConfigurationChanged", err)
	}
	if v, nv := suffrages(t, l); len(v) != 3 || !slices.Equal(nv, []string{"n9"}) {
		t.Fatalf("voters %v, non-voters %v: a change on a stale view went through", v, nv)
	}
	fresh, err := l.viewVoters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.index <= stale.index {
		t.Fatalf("fresh view at configuration index %d, stale one at %d", fresh.index, stale.index)
	}
	if err := l.demote(fresh.index, victim, "test"); err != nil {
		t.Fatalf("demotion on a fresh view: %v", err)
	}
	if v, _ := suffrages(t, l); len(v) != 2 || slices.Contains(v, string(victim.ID)) {
		t.Fatalf("voters %v after demoting %s", v, victim.ID)
	}
}

// Joins decided at once each see a configuration the others change: a
// join refused for that is decided again, and each node that answers
// joins as a voter.
func TestConcurrentJoinsAllLand(t *testing.T) {
	c, l := voterCluster(t, 1)
	setMaxVoters(t, l, 5)
	var joiners []*Node
	for _, id := range []string{"n2", "n3", "n4"} {
		joiners = append(joiners, c.start(id, false, ""))
	}
	ctx := ctxT(t, 30*time.Second)
	errs := make(chan error, len(joiners))
	for _, j := range joiners {
		go func() {
			errs <- l.Join(ctx, JoinRequest{ID: j.ID(), ClusterAddr: j.ClusterAddr(), AdminAddr: j.AdminAddr()})
		}()
	}
	for range joiners {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent join: %v", err)
		}
	}
	if v, nv := suffrages(t, l); !slices.Equal(v, []string{"n1", "n2", "n3", "n4"}) || len(nv) != 0 {
		t.Fatalf("voters %v, non-voters %v after three joins", v, nv)
	}
}

// newestConfigEntry is the index of the newest configuration entry in
// n's raft log, 0 if there is none.
func newestConfigEntry(t *testing.T, n *Node) uint64 {
	t.Helper()
	first, err := n.logStore.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := n.logStore.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := last; i >= first && i > 0; i-- {
		var e raft.Log
		if err := n.logStore.GetLog(i, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == raft.LogConfiguration {
			return i
		}
	}
	return 0
}

// waitIndex waits for n's configuration index to be want.
func waitIndex(t *testing.T, n *Node, want uint64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); n.configIndex.load() != want; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: configuration index %d, want %d (applied %d, newest configuration entry in its log %d)",
				n.ID(), n.configIndex.load(), want, n.State().Applied(), newestConfigEntry(t, n))
		}
	}
}

// Every node learns the newest configuration's index: from the entries
// it applies, from its own snapshot when it restarts (raft does not
// apply the entries a snapshot covers again), and from a snapshot the
// leader installs on it.
func TestConfigIndexThroughSnapshots(t *testing.T) {
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft()}
	c.tune.TrailingLogs = 5
	c.tune.SnapshotThreshold = 1 << 30 // only explicit snapshots
	t.Cleanup(c.closeAll)
	c.start("n1", true, "")
	c.leader(5 * time.Second)
	c.start("n2", false, c.nodes["n1"].AdminAddr())
	c.start("n3", false, c.nodes["n1"].AdminAddr())
	l := c.leader(5 * time.Second)
	want := newestConfigEntry(t, l)
	for _, n := range c.nodes {
		waitIndex(t, n, want)
	}

	// A follower stops; a configuration change and more entries follow,
	// and the others compact their logs past them.
	fs := c.followers(l)
	down, up := fs[0], fs[1]
	downCfg := c.config(down.ID(), false, "")
	downCfg.ClusterAddr, downCfg.AdminAddr = down.ClusterAddr(), down.AdminAddr()
	if err := down.Close(); err != nil {
		t.Fatal(err)
	}
	delete(c.nodes, down.ID())
	if err := l.Join(ctxT(t, 10*time.Second), JoinRequest{ID: "n9", ClusterAddr: "127.0.0.1:1", AdminAddr: "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	want = newestConfigEntry(t, l)
	if got := l.configIndex.load(); got != want {
		t.Fatalf("leader's configuration index %d after the join, want %d", got, want)
	}
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	for i := 0; i < 20; i++ {
		mustApply(t, l, addMailbox(fmt.Sprintf("u%d@example.com", i)))
	}
	for _, n := range []*Node{l, up} {
		waitIndex(t, n, want)
		if err := n.Snapshot(); err != nil {
			t.Fatal(err)
		}
		if first, _ := n.logStore.FirstIndex(); first <= want {
			t.Fatalf("%s log not compacted past the configuration at %d: first index %d", n.ID(), want, first)
		}
	}

	// The follower that snapshotted restarts: no configuration entry is
	// applied again, its snapshot says the index.
	up = c.restartWith(up.ID(), func(string) {})
	if got := up.configIndex.load(); got != want {
		t.Fatalf("%s restarted with configuration index %d, want %d", up.ID(), got, want)
	}
	// The stopped one restarts behind the leader's log and is sent a
	// snapshot.
	back := c.startWith(downCfg)
	waitFor(t, 10*time.Second, back.ID()+" installs a snapshot", func() bool { return testutilCounter(back.metrics.restores) >= 1 })
	waitIndex(t, back, want)
}
