package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"powermail/fsm"
)

var testSecret = []byte("test-cluster-secret-0123456789")

// testCluster runs real nodes in this process, on loopback TCP, each with
// its own data directory.
type testCluster struct {
	t     testing.TB
	dir   string
	nodes map[string]*Node
	tune  RaftTuning
	tweak func(*Config) // applied to every node's config
}

func newTestCluster(t testing.TB, size int) *testCluster {
	return newTestClusterWith(t, size, nil)
}

func newTestClusterWith(t testing.TB, size int, tweak func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft(), tweak: tweak}
	c.start("n1", true, "")
	for i := 2; i <= size; i++ {
		c.start(fmt.Sprintf("n%d", i), false, c.nodes["n1"].AdminAddr())
	}
	t.Cleanup(c.closeAll)
	return c
}

// oneNodeWithMailboxes starts a one-node cluster holding example.com and
// mailboxes u0 to u<n-1>.
func oneNodeWithMailboxes(t *testing.T, n int) (*testCluster, *Node) {
	t.Helper()
	c := newTestCluster(t, 1)
	l := c.leader(10 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	for i := range n {
		mustApply(t, l, addMailbox(fmt.Sprintf("u%d@example.com", i)))
	}
	return c, l
}

func fastRaft() RaftTuning {
	return RaftTuning{HeartbeatTimeout: 300 * time.Millisecond, ElectionTimeout: 300 * time.Millisecond,
		LeaderLeaseTimout: 150 * time.Millisecond}
}

func (c *testCluster) config(id string, bootstrap bool, join string) Config {
	cfg := c.baseConfig(id, bootstrap, join)
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	return cfg
}

func (c *testCluster) baseConfig(id string, bootstrap bool, join string) Config {
	logOut := io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	return Config{
		ID: id, DataDir: filepath.Join(c.dir, id), ClusterAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0",
		Secret: testSecret, Bootstrap: bootstrap, Join: join, Raft: c.tune,
		Logger:            slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
		BootstrapSettings: &BootstrapSettings{Replicas: 2, WriteQuorum: 2},
	}
}

func (c *testCluster) start(id string, bootstrap bool, join string) *Node {
	c.t.Helper()
	return c.startWith(c.config(id, bootstrap, join))
}

func (c *testCluster) startWith(cfg Config) *Node {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := New(ctx, cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	c.nodes[cfg.ID] = n
	return n
}

func (c *testCluster) closeAll() {
	for _, n := range c.nodes {
		n.Close()
	}
}

func (c *testCluster) leader(timeout time.Duration) *Node {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, n := range c.nodes {
			if n.IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no leader within %v", timeout)
	return nil
}

// repairRound runs a repair round on the leader, and again on the next
// one if leadership moved meanwhile: the test raft's lease is short, and
// a loaded machine can move it between a lookup and a round.
func (c *testCluster) repairRound(ctx context.Context) (RepairStatus, error) {
	c.t.Helper()
	for i := 0; ; i++ {
		st, err := c.leader(10 * time.Second).RepairRound(ctx)
		if !errors.Is(err, ErrNotLeader) || i == 4 {
			return st, err
		}
	}
}

// collectGarbage is repairRound for a garbage collection round.
func (c *testCluster) collectGarbage(ctx context.Context) (int, int64, error) {
	c.t.Helper()
	for i := 0; ; i++ {
		bodies, freed, err := c.leader(10 * time.Second).CollectGarbage(ctx)
		if !errors.Is(err, ErrNotLeader) || i == 4 {
			return bodies, freed, err
		}
	}
}

func (c *testCluster) follower() *Node {
	for _, n := range c.nodes {
		if !n.IsLeader() {
			return n
		}
	}
	return nil
}

// followers is every node but the leader l.
func (c *testCluster) followers(l *Node) []*Node {
	var out []*Node
	for _, n := range c.nodes {
		if n != l {
			out = append(out, n)
		}
	}
	return out
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustApply(t testing.TB, n *Node, cmd fsm.Command) {
	t.Helper()
	if addsOnly(cmd) {
		mustAdd(t, n, cmd)
		return
	}
	if _, err := n.Apply(ctxT(t, 10*time.Second), cmd); err != nil {
		t.Fatalf("apply %T on %s: %v", cmd, n.ID(), err)
	}
}

// addsOnly reports whether cmd only adds directory entries, so that a
// repeat of one that landed is refused as existing and changes nothing.
func addsOnly(cmd fsm.Command) bool {
	switch cmd.(type) {
	case *fsm.DomainAdd, *fsm.MailboxAdd, *fsm.ForwardAdd:
		return true
	}
	return false
}

// mustAdd is mustApply for a command that adds (a domain, mailboxes, a
// forward) in a test's setup. A leader change on a loaded machine can
// hide its outcome (ErrIndeterminate); it is then proposed again, as an
// operator repeats a command, and "exists" on a repeat means the first
// took.
func mustAdd(t testing.TB, n *Node, cmd fsm.Command) {
	t.Helper()
	for try := 1; ; try++ {
		_, err := n.Apply(ctxT(t, 10*time.Second), cmd)
		if err == nil || try > 1 && errors.Is(err, fsm.ErrExists) {
			return
		}
		if !errors.Is(err, ErrIndeterminate) || try == 5 {
			t.Fatalf("apply %T on %s: %v", cmd, n.ID(), err)
		}
		t.Logf("apply %T on %s: %v; again", cmd, n.ID(), err)
	}
}

// readEverywhere checks that every node, right after a barrier, sees addr.
func (c *testCluster) readEverywhere(addr string) {
	c.t.Helper()
	for id, n := range c.nodes {
		if err := n.Barrier(ctxT(c.t, 5*time.Second)); err != nil {
			c.t.Fatalf("barrier on %s: %v", id, err)
		}
		if _, err := n.State().Mailbox(addr); err != nil {
			c.t.Fatalf("node %s after barrier: %v", id, err)
		}
	}
}

func addMailbox(addr string) *fsm.MailboxAdd {
	return &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: addr}}}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
