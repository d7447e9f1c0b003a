package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

func TestWritesThroughEveryNodeReadEverywhere(t *testing.T) {
	c := newTestCluster(t, 3)
	c.leader(5 * time.Second)
	mustApply(t, c.nodes["n2"], &fsm.DomainAdd{Name: "example.com"})
	i := 0
	for round := 0; round < 3; round++ {
		for _, id := range []string{"n1", "n2", "n3"} {
			addr := fmt.Sprintf("u%d@example.com", i)
			i++
			mustApply(t, c.nodes[id], addMailbox(addr))
			c.readEverywhere(addr)
		}
	}
	// A business error crosses the forwarding path intact.
	_, err := c.follower().Apply(ctxT(t, 5*time.Second), addMailbox("u0@example.com"))
	if !errors.Is(err, fsm.ErrExists) {
		t.Fatalf("duplicate through follower: %v", err)
	}
	st, err := c.nodes["n3"].Status(ctxT(t, 5*time.Second))
	if err != nil || st.Health != "healthy" || len(st.Nodes) != 3 || st.Leader == "" {
		t.Fatalf("status: %+v %v", st, err)
	}
	for _, m := range st.Nodes {
		if m.AdminAddr == "" || m.ClusterAddr == "" || !m.Reachable {
			t.Fatalf("member %+v", m)
		}
	}
	s, _ := c.nodes["n3"].State().Settings()
	if s.Replicas != 2 || s.WriteQuorum != 2 {
		t.Fatalf("bootstrap settings %+v", s)
	}
}

func TestLeaderFailover(t *testing.T) {
	c := newTestCluster(t, 3)
	old := c.leader(5 * time.Second)
	mustApply(t, old, &fsm.DomainAdd{Name: "example.com"})
	old.Kill()
	delete(c.nodes, old.ID())
	start := time.Now()
	nl := c.leader(5 * time.Second)
	t.Logf("new leader %s after %v", nl.ID(), time.Since(start))
	for id, n := range c.nodes {
		addr := "after-" + id + "@example.com"
		mustApply(t, n, addMailbox(addr))
		c.readEverywhere(addr)
	}
}

func TestRemoveAndRejoin(t *testing.T) {
	c := newTestCluster(t, 3)
	c.leader(5 * time.Second)
	f := c.nodes["n2"] // a follower other than n1, which the test talks through
	if f.IsLeader() {
		f = c.nodes["n3"]
	}
	id := f.ID()
	t.Logf("leader %s, removing %s", c.leader(time.Second).ID(), id)
	if err := c.nodes["n1"].Remove(ctxT(t, 5*time.Second), id, false); err != nil {
		t.Fatal(err)
	}
	st, _ := c.nodes["n1"].Status(ctxT(t, 5*time.Second))
	if len(st.Nodes) != 2 {
		t.Fatalf("after remove: %+v", st.Nodes)
	}
	if err := c.nodes["n1"].Remove(ctxT(t, 5*time.Second), id, false); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	f.Close()
	delete(c.nodes, id)
	mustApply(t, c.nodes["n1"], &fsm.DomainAdd{Name: "while-away.com"})

	// Re-join with the same data directory, through a follower's admin API.
	var through string
	for _, n := range c.nodes {
		if !n.IsLeader() {
			through = n.AdminAddr()
		}
	}
	n := c.startWith(c.config(id, false, through))
	// Joining again with the same ID and address is a no-op.
	if err := c.nodes["n1"].Join(ctxT(t, 5*time.Second), JoinRequest{ID: id, ClusterAddr: n.ClusterAddr(), AdminAddr: n.AdminAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "rejoined node to catch up", func() bool {
		_, err := n.State().Domain("while-away.com")
		return err == nil
	})
	st, _ = n.Status(ctxT(t, 5*time.Second))
	if len(st.Nodes) != 3 || st.Health != "healthy" {
		t.Fatalf("after rejoin: %+v", st)
	}
}

// A node that joins under a new ID at an old member's address (a wiped
// disk set up again) replaces that member in the directory too.
func TestJoinUnderANewIDReplacesTheOldMember(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	old := c.nodes["n2"]
	if old == l {
		old = c.nodes["n3"]
	}
	cfg := c.config(old.ID()+"b", false, l.AdminAddr())
	cfg.ClusterAddr = old.ClusterAddr()
	old.Close()
	delete(c.nodes, old.ID())
	c.startWith(cfg)
	ms, err := l.State().Members()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.ID == old.ID() {
			t.Fatalf("the old member stays in the directory: %+v", ms)
		}
	}
	if len(ms) != 3 {
		t.Fatalf("members: %+v", ms)
	}
}

func TestRestartAllKeepsEntries(t *testing.T) {
	c := newTestCluster(t, 3)
	mustApply(t, c.leader(5*time.Second), &fsm.DomainAdd{Name: "example.com"})
	for i := 0; i < 50; i++ {
		mustApply(t, c.nodes[fmt.Sprintf("n%d", i%3+1)], addMailbox(fmt.Sprintf("u%d@example.com", i)))
	}
	applied := map[string]uint64{}
	addrs := map[string][2]string{}
	for id, n := range c.nodes {
		addrs[id] = [2]string{n.ClusterAddr(), n.AdminAddr()}
		n.Close()
		applied[id] = n.State().Applied()
	}
	for id := range applied {
		cfg := c.config(id, id == "n1", "")
		cfg.ClusterAddr, cfg.AdminAddr = addrs[id][0], addrs[id][1]
		c.startWith(cfg)
	}
	for id, n := range c.nodes {
		// The state resumes where it was, without replaying the log.
		if got := n.State().Applied(); got < applied[id] {
			t.Fatalf("%s resumed at %d, had %d", id, got, applied[id])
		}
	}
	c.leader(5 * time.Second)
	c.readEverywhere("u49@example.com")
	mustApply(t, c.nodes["n3"], addMailbox("after-restart@example.com"))
	c.readEverywhere("after-restart@example.com")
}

// compactedPair starts n1 and n2 on c, taking raft snapshots only when
// told, adds a domain and 100 mailboxes, and compacts every log, so that
// a node joining afterwards must be sent a snapshot by whichever node
// leads. It returns the leader.
func (c *testCluster) compactedPair() *Node {
	c.tune.TrailingLogs = 5
	c.tune.SnapshotThreshold = 1 << 30 // only explicit snapshots
	c.start("n1", true, "")
	c.start("n2", false, c.nodes["n1"].AdminAddr())
	l := c.leader(5 * time.Second)
	mustApply(c.t, l, &fsm.DomainAdd{Name: "example.com"})
	for i := 0; i < 100; i++ {
		mustApply(c.t, l, addMailbox(fmt.Sprintf("u%d@example.com", i)))
	}
	for _, n := range c.nodes {
		if err := n.Snapshot(); err != nil {
			c.t.Fatal(err)
		}
		if first, _ := n.logStore.FirstIndex(); first < 50 {
			c.t.Fatalf("%s log not compacted: first index %d", n.ID(), first)
		}
	}
	return l
}

func TestSnapshotInstallOnNewNode(t *testing.T) {
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft()}
	t.Cleanup(c.closeAll)
	l := c.compactedPair()
	n3 := c.start("n3", false, l.AdminAddr())
	waitFor(t, 10*time.Second, "snapshot install", func() bool {
		_, err := n3.State().Mailbox("u99@example.com")
		return err == nil
	})
	waitFor(t, 2*time.Second, "the restore to be counted", func() bool {
		return testutilCounter(n3.metrics.restores) >= 1
	})
	mustApply(t, n3, addMailbox("via-n3@example.com"))
	c.readEverywhere("via-n3@example.com")
}

func TestUnauthenticatedPeerIsRefused(t *testing.T) {
	c := newTestCluster(t, 1)
	l := c.leader(5 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "secret.example"})

	// A raw dial with the wrong secret fails the handshake.
	for _, kind := range []byte{kindRaft, kindRPC} {
		if conn, err := (clusterDialer{secret: []byte("wrong-secret-wrong-secret")}).dial(ctxT(t, 2*time.Second), l.ClusterAddr(), kind); err == nil {
			conn.Close()
			t.Fatalf("kind %c: handshake with wrong secret succeeded", kind)
		}
	}
	// A node with the wrong secret cannot join through the admin API.
	cfg := c.config("intruder", false, l.AdminAddr())
	cfg.Secret = []byte("wrong-secret-wrong-secret")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if n, err := New(ctx, cfg); err == nil {
		n.Close()
		t.Fatal("intruder joined")
	}
	// Even if an operator adds it as a voter, it can neither read the log
	// nor disturb the cluster.
	cfg.Join = ""
	in := c.startWith(cfg)
	if err := l.Join(ctxT(t, 3*time.Second), JoinRequest{ID: "intruder", ClusterAddr: in.ClusterAddr()}); err == nil {
		t.Log("voter added (configuration cannot commit without the intruder's acks)")
	}
	time.Sleep(time.Second)
	if _, err := in.State().Domain("secret.example"); !errors.Is(err, fsm.ErrNotFound) {
		t.Fatalf("intruder read the directory: %v", err)
	}
}

// An entry the leader cannot decode never reaches the log, where it would
// stop every replica: a forwarded proposal is checked first.
func TestForwardedUndecodableEntryIsRefused(t *testing.T) {
	c := newTestCluster(t, 2)
	l := c.leader(5 * time.Second)
	f := c.follower()
	bad := []byte{byte(fsm.CmdDeliver), fsm.EncodingBinary, 0xff}
	err := f.call(ctxT(t, 5*time.Second), l.ClusterAddr(), "POST", "/rpc/apply", bad, nil)
	if !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("forwarded garbage: %v, want ErrInvalid", err)
	}
	mustApply(t, f, &fsm.DomainAdd{Name: "after.example"})
	mustApply(t, f, addMailbox("x@after.example"))
	c.readEverywhere("x@after.example")
}

// An append whose replica set the directory refuses because the members
// or the write quorum changed under it is a temporary failure; one that
// still fits is not taken for one.
func TestReplicasOutdated(t *testing.T) {
	c := newTestCluster(t, 2)
	l := c.leader(5 * time.Second)
	waitFor(t, 5*time.Second, "member records", func() bool { m, _ := l.State().Members(); return len(m) == 2 })
	ctx := ctxT(t, 5*time.Second)
	for replicas, want := range map[string]bool{"n1,n2": false, "n1,ghost": true, "n1": true} {
		if got := l.replicasOutdated(ctx, strings.Split(replicas, ",")); got != want {
			t.Errorf("replicas %s: outdated %v, want %v", replicas, got, want)
		}
	}
}

// With one voter of three down, removing a live one would leave two voters
// of which one answers: refused unless forced. Removing the down one is
// fine.
func TestRemoveRefusesToLoseQuorum(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	others := c.followers(l)
	live, down := others[0], others[1]
	down.Close()
	delete(c.nodes, down.ID())
	err := l.Remove(ctxT(t, 10*time.Second), live.ID(), false)
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "no quorum") {
		t.Fatalf("removing a live voter with another down: %v", err)
	}
	mustApply(t, l, &fsm.DomainAdd{Name: "still.example"})
	if err := l.Remove(ctxT(t, 10*time.Second), down.ID(), false); err != nil {
		t.Fatalf("removing the down voter: %v", err)
	}
	mustApply(t, l, &fsm.DomainAdd{Name: "after.example"})
}

// A join that would replace a member that still answers (a mistyped
// address, a reused ID) is refused, and changes nothing.
func TestJoinDoesNotEvictALiveMember(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	victim := c.follower()
	err := l.Join(ctxT(t, 10*time.Second), JoinRequest{ID: "n9", ClusterAddr: victim.ClusterAddr()})
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "still answers") {
		t.Fatalf("join at a live member's address: %v", err)
	}
	ms, _ := l.State().Members()
	cf := l.raft.GetConfiguration().Configuration()
	if len(ms) != 3 || len(cf.Servers) != 3 {
		t.Fatalf("members %+v, servers %+v", ms, cf.Servers)
	}
}

// A node that comes back with an empty data directory under the ID of a
// voter leaves before it joins, so it never votes with an empty log: with
// another voter down, that leave would cost the quorum and is refused,
// and the node waits; once the voter is back, it joins.
func TestWipedVoterLeavesBeforeItJoins(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	others := c.followers(l)
	down, wiped := others[0], others[1]
	downCfg := c.config(down.ID(), false, l.AdminAddr())
	downCfg.ClusterAddr, downCfg.AdminAddr = down.ClusterAddr(), down.AdminAddr()
	wipedCfg := c.config(wiped.ID(), false, l.AdminAddr())
	wipedCfg.ClusterAddr = wiped.ClusterAddr()
	down.Close()
	wiped.Close()
	delete(c.nodes, down.ID())
	delete(c.nodes, wiped.ID())
	if err := os.RemoveAll(wipedCfg.DataDir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	n, err := New(ctx, wipedCfg)
	cancel()
	if err == nil {
		n.Close()
		t.Fatal("a wiped voter joined with another voter down: it would vote with an empty log")
	}
	c.startWith(downCfg)
	back := c.startWith(wipedCfg)
	mustApply(t, back, &fsm.DomainAdd{Name: "after.example"})
	mustApply(t, back, addMailbox("x@after.example"))
	c.readEverywhere("x@after.example")
}

// A node whose secret the cluster does not take stops at once with
// ErrJoinRefused, instead of retrying for ever.
func TestJoinWithAWrongSecretIsRefused(t *testing.T) {
	c := newTestCluster(t, 1)
	l := c.leader(5 * time.Second)
	cfg := c.config("n2", false, l.AdminAddr())
	cfg.Secret = []byte("not the cluster's secret at all")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	n, err := New(ctx, cfg)
	if err == nil {
		n.Close()
	}
	if !errors.Is(err, ErrJoinRefused) || ctx.Err() != nil {
		t.Fatalf("join with a wrong secret: %v (context %v), want ErrJoinRefused at once", err, ctx.Err())
	}
}
