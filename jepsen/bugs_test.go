package jepsen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/jepsen/check"
)

// Regression tests for server bugs the harness found (jepsen/RESULTS.md):
// each reproduces the bug's conditions and asserts the correct behaviour.
// All are fixed; they run in `make test` and are skipped under -short
// (each runs real processes for up to a minute).

func knownBug(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("a regression test with real processes; skipped with -short")
	}
}

// TestBug1NoopStaleAfterLeaderLoss: a flag change is acknowledged through
// the leader, then the leader stops answering. A session on a follower
// sends NOOP, then UID FETCH FLAGS. The NOOP must either report the change
// or fail; the bug is that it waits out the command timeout, answers OK
// anyway (the poll's read-barrier error is swallowed), and the FETCH then
// returns the flags from before the acknowledged change.
func TestBug1NoopStaleAfterLeaderLoss(t *testing.T) {
	knownBug(t)
	noopAfterLeaderLoss(t, false, nil)
}

// TestBug4NoopAfterFailedCommand: as bug 1, but the follower's session
// has just had a command fail (here STATUS of a folder that does not
// exist), and the leader is killed rather than paused, so the NOOP's read
// barrier fails at once instead of waiting for the next leader.
// imapserver polls only after a command that succeeded, so the NOOP was
// taken for the poll of the failed command: its failed read was swallowed
// and it answered OK from the old snapshot.
func TestBug4NoopAfterFailedCommand(t *testing.T) {
	knownBug(t)
	noopAfterLeaderLoss(t, true, func(b *imapConn) {
		if _, err := b.c.Status("No such folder", &imap.StatusOptions{NumMessages: true}).Wait(); err == nil {
			t.Fatal("STATUS of a missing folder: OK, want NO")
		}
	})
}

// noopAfterLeaderLoss runs the shared scenario of bugs 1 and 4: a flag
// change acknowledged through the leader, the leader paused (or killed),
// then NOOP and UID FETCH FLAGS on a follower's session, which must either
// fail or show the change. beforeStore runs on the follower's session
// first.
func noopAfterLeaderLoss(t *testing.T, kill bool, beforeStore func(b *imapConn)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := BuildBinary(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartCluster(ctx, ClusterConfig{Binary: bin, Dir: filepath.Join(dir, "c"), Nodes: 3, Replicas: 2, ServerArgs: ServerTuning})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.WithoutCancel(ctx))
	w := NewWorkload(c, nil, WorkloadConfig{Seed: 1})
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	leader := c.Node(c.Leader(ctx))
	var follower *Node
	for _, n := range c.Nodes() {
		if n != leader {
			follower = n
		}
	}
	open := func(n *Node) *imapConn {
		s, err := dialIMAP(n, w.flags, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s.deadline(time.Minute)
		if _, err := s.c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(leader), open(follower)
	defer a.Close()
	defer b.Close()
	body := []byte("Subject: NOOP after leader loss\r\n\r\nhello\r\n")
	cmd := a.c.Append("INBOX", int64(len(body)), nil)
	cmd.Write(body)
	cmd.Close()
	d, err := cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	uid := uint32(d.UID)
	if err := b.c.Noop().Wait(); err != nil { // the follower's session knows the message
		t.Fatal(err)
	}
	if beforeStore != nil {
		beforeStore(b)
	}
	if err := a.c.Store(imap.UIDSetNum(imap.UID(uid)), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
		Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	// Acknowledged; now the leader is gone.
	if kill {
		if err := c.Kill(ctx, leader.ID); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := c.Pause(leader.ID); err != nil {
			t.Fatal(err)
		}
		defer c.Resume(leader.ID)
	}
	start := time.Now()
	if err := b.c.Noop().Wait(); err != nil {
		t.Logf("NOOP failed after %v (fine): %v", time.Since(start), err)
		return
	}
	t.Logf("NOOP answered OK after %v", time.Since(start).Round(time.Millisecond))
	f, err := fetchFlags(b, uid)
	if err != nil || len(f) != 1 {
		t.Fatalf("FETCH FLAGS: %v (%d answers)", err, len(f))
	}
	if !slices.Contains(f[0].flags, `\Flagged`) {
		t.Errorf("NOOP on %s answered OK after %v, then FETCH FLAGS returned %v: the \\Flagged stored (and acknowledged) through %s before the NOOP began is missing",
			follower.ID, time.Since(start).Round(time.Millisecond), f[0].flags, leader.ID)
	}
}

// TestBug2StartupPanicOnEarlyRPC: a node that restarts while the leader
// has work for it (here: garbage-collection confirmations of bodies
// deleted while it was down) receives the leader's cluster RPC as soon as
// its cluster port listens, before raft is started. The handler's read
// barrier calls raft.State() on a nil *raft.Raft and the process panics
// (node.(*Node).onLeader, node/rpc.go), again on every start while the
// leader keeps retrying. The node must start.
func TestBug2StartupPanicOnEarlyRPC(t *testing.T) {
	knownBug(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "bug2-")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if !t.Failed() {
			os.RemoveAll(dir)
		}
	}()
	bin, err := BuildBinary(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	args := append(slices.Clone(ServerTuning), "--gc-interval", "1s", "--gc-idle", "1s")
	c, err := StartCluster(ctx, ClusterConfig{Binary: bin, Dir: filepath.Join(dir, "c"), Nodes: 3, Replicas: 2,
		ServerArgs: args, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.WithoutCancel(ctx))
	w := NewWorkload(c, check.NewRecorder(nil), WorkloadConfig{Seed: 2, Mailboxes: 1})
	if err := w.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader(ctx)
	var victim *Node
	for _, n := range c.Nodes() {
		if n.ID != leader {
			victim = n
		}
	}
	via := c.Node(leader)
	rng := w.rng(1)
	// Raft entries to replay make the window (until raft starts) longer.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := w.rng(uint64(100 + g))
			for i := range 250 {
				id := fmt.Sprintf("<b2.load.%d.%d@jepsen.test>", g, i)
				w.deliver(via, w.boxes[:1], id, message(r, w.boxes[:1], id), 0)
			}
		}()
	}
	wg.Wait()
	// The window is short, so try a few rounds.
	for round := 0; round < 6 && len(c.Crashes()) == 0; round++ {
		for i := range 100 { // bodies on every node
			id := fmt.Sprintf("<b2.%d.%d@jepsen.test>", round, i)
			w.deliver(via, []string{w.pops[0]}, id, message(rng, w.pops[:1], id), 0)
		}
		if err := c.Kill(ctx, victim.ID); err != nil {
			t.Fatal(err)
		}
		w.popSession(via, w.pops[0], func() bool { return true }) // delete them all
		time.Sleep(3 * time.Second)                               // the leader now has collection work for the victim
		if err := c.Restart(ctx, victim.ID); err != nil {
			t.Fatal(err)
		}
	}
	for _, cr := range c.Crashes() {
		t.Errorf("%s crashed while starting: %s (whole log kept: %s)\n%s", cr.Node, cr.Err, victim.Log, cr.Output[:min(len(cr.Output), 1500)])
	}
}
