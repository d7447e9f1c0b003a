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
// nothing proposed through it is applied. That holds from when it has
// lost its leader (node/DESIGN.md, Not yet: before, it still follows
// the old one).
func TestRemovedNodeRefusesReadsAndWritesAtOnce(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	gone := c.followers(l)[0]
	mustAdd(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustAdd(t, l, addMailbox("alice@example.com"))
	c.readEverywhere("alice@example.com")
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
	check("resolve of a known address", func() error {
		_, err := gone.Resolve(ctxT(t, 30*time.Second), "alice@example.com")
		return err
	})
	check("deliver", func() error {
		_, err := gone.Deliver(ctxT(t, 30*time.Second), Message{Mailboxes: []string{"alice@example.com"}, Received: time.Now()}, strings.NewReader("Subject: late\r\n\r\nlate\r\n"))
		return err
	})
	if _, err := l.State().Domain("late.example"); !errors.Is(err, fsm.ErrNotFound) {
		t.Errorf("domain proposed through the removed node: %v, want not found", err)
	}
}
