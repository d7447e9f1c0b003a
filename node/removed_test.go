package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// A removed node's reads and writes fail at once with ErrRemoved (no
// leader will ever answer them), not when the caller's context ends;
// nothing proposed through it is applied. Here it has lost its leader
// as well; TestRemovedNodeRefusesBeforeItLosesItsLeader checks the time
// before.
func TestRemovedNodeRefusesReadsAndWritesAtOnce(t *testing.T) {
	l, gone := aliceAndAFollower(t)
	if err := l.Remove(ctxT(t, 5*time.Second), gone.ID(), false); err != nil {
		t.Fatal(err)
	}
	// It refuses at once from when it has lost its leader: raft lets a
	// follower go up to some three heartbeat timeouts without contact
	// (its timer is random, between one and two), and longer on a loaded
	// machine, so the test waits for that rather than a fixed time.
	waitFor(t, 30*time.Second, gone.ID()+" to lose its leader", func() bool {
		addr, _ := gone.raft.LeaderWithID()
		return addr == ""
	})
	refusesAtOnce(t, l, gone, true)
}

// A node removed while it runs refuses reads and writes as soon as it
// holds the configuration that leaves it out, while it still follows
// the old leader: a barrier through it would otherwise get a read index
// it never reaches, and a write would be committed by the old leader and
// then waited for in vain. Its heartbeat timeout is raised to a minute
// once the cluster runs, so it keeps its leader for the whole test.
func TestRemovedNodeRefusesBeforeItLosesItsLeader(t *testing.T) {
	l, gone := aliceAndAFollower(t)
	rc := gone.raft.ReloadableConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout = time.Minute, time.Minute
	if err := gone.raft.ReloadConfig(rc); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(ctxT(t, 5*time.Second), gone.ID(), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, gone.ID()+" to hold its removal", func() bool {
		return gone.leftOut(gone.raft.GetConfiguration().Configuration().Servers)
	})
	if addr, _ := gone.raft.LeaderWithID(); addr == "" {
		t.Fatalf("%s lost its leader already: the test shows nothing", gone.ID())
	}
	refusesAtOnce(t, l, gone, false)
	if addr, _ := gone.raft.LeaderWithID(); addr == "" {
		t.Errorf("%s lost its leader during the test: the checks above may have passed the old way", gone.ID())
	}
}

// refusesAtOnce checks that a barrier, a write, a delivery and (with
// resolve) an RCPT lookup through the removed node gone fail with
// ErrRemoved within a second, and that the write never reached the
// cluster (led by l).
func refusesAtOnce(t *testing.T, l, gone *Node, resolve bool) {
	t.Helper()
	check := func(what string, call func() error) {
		t.Helper()
		start := time.Now()
		err := call()
		if !errors.Is(err, ErrRemoved) || time.Since(start) > time.Second {
			t.Errorf("%s through the removed node: %v after %v, want ErrRemoved at once", what, err, time.Since(start))
		}
	}
	check("barrier", func() error { return gone.Barrier(ctxT(t, 30*time.Second)) })
	check("apply", func() error {
		_, err := gone.Apply(ctxT(t, 30*time.Second), &fsm.DomainAdd{Name: "late.example"})
		return err
	})
	if resolve {
		check("resolve of a known address", func() error {
			_, err := gone.Resolve(ctxT(t, 30*time.Second), "alice@example.com")
			return err
		})
	}
	check("deliver", func() error {
		_, err := gone.Deliver(ctxT(t, 30*time.Second), Message{Mailboxes: []string{"alice@example.com"}, Received: time.Now()}, strings.NewReader("Subject: late\r\n\r\nlate\r\n"))
		return err
	})
	if _, err := l.State().Domain("late.example"); !errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("domain proposed through the removed node: %v, want not found", err)
	}
}

// aliceAndAFollower starts three nodes with alice@example.com on every
// one, and returns the leader and a follower to remove.
func aliceAndAFollower(t *testing.T) (l, gone *Node) {
	c := newTestCluster(t, 3)
	l = c.leader(5 * time.Second)
	mustAdd(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustAdd(t, l, addMailbox("alice@example.com"))
	c.readEverywhere("alice@example.com")
	return l, c.followers(l)[0]
}
