package node

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// TestTrimKeepsNoCopyOnARemovedNode: R=1 and a body listed on two
// followers (R was just lowered, as after an operator raised it to copy
// a node's bodies elsewhere before removing it). A trim round keeps the
// copy on one and drops the other; the kept node is removed between the
// trim's verification and its placement change (a trim of millions of
// bodies after R was lowered runs for minutes). The removal's checks
// pass, since the other copy is still listed then, so the trim must not
// leave the body listed only on the removed node with the other copy
// deleted: that loses an acknowledged message.
func TestTrimKeepsNoCopyOnARemovedNode(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	ctx := ctxT(t, 60*time.Second)
	fs := c.followers(l)
	body := []byte("Subject: kept once\r\n\r\nthe only message\r\n")
	var h storage.Hash
	for _, f := range fs {
		var err error
		if h, _, err = f.bodies.Put(ctx, bytes.NewReader(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, l, &fsm.Deliver{ID: "trim-removed", Hash: h.String(), Size: int64(len(body)),
		Replicas: []string{fs[0].ID(), fs[1].ID()}, Mailboxes: []string{"a@example.com"}, InternalDate: time.Now().UnixMilli()})
	settings, err := l.State().Settings()
	if err != nil {
		t.Fatal(err)
	}
	settings.Replicas, settings.WriteQuorum = 1, 1
	mustApply(t, l, &fsm.SettingsSet{Settings: settings})
	time.Sleep(2 * l.cfg.GCIdle) // the copies are idle: a drop deletes at once

	var removed string
	l.beforeTrimPlace = func(keep, drop []string) {
		l.beforeTrimPlace = nil
		removed = keep[0]
		if err := l.Remove(ctx, removed, false); err != nil {
			t.Errorf("removing %s, which another member's copy still backs: %v", removed, err)
		}
	}
	if _, err := c.repairRound(ctx); err != nil && !errors.Is(err, ErrNotLeader) {
		t.Fatal(err)
	}
	if removed == "" {
		t.Fatal("the round trimmed nothing")
	}
	// Whatever the trim did, a round later the body must be listed on a
	// member that holds it.
	if _, err := c.repairRound(ctx); err != nil {
		t.Fatal(err)
	}
	l.Barrier(ctx)
	rec, err := l.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for _, id := range rec.Replicas {
		if id == removed {
			continue
		}
		if err := c.nodes[id].bodies.Verify(ctx, h); err != nil {
			t.Fatalf("body listed on member %s, which lacks it: %v", id, err)
		}
		held++
	}
	if held == 0 {
		t.Fatalf("body listed only on %v after %s was removed; members' copies: %v", rec.Replicas, removed, memberCopies(ctx, c, removed, h))
	}
	if !slices.Contains(rec.Replicas, removed) && len(rec.Replicas) != 1 {
		t.Fatalf("listing %v, want one copy on a member", rec.Replicas)
	}
}

// memberCopies says which running nodes other than except hold h.
func memberCopies(ctx context.Context, c *testCluster, except string, h storage.Hash) map[string]bool {
	out := map[string]bool{}
	for id, n := range c.nodes {
		if id != except {
			ok, _, _ := n.bodies.Has(ctx, h)
			out[id] = ok
		}
	}
	return out
}
