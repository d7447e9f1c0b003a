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
	l.beforeUnlist = func(keep, drop []string) {
		l.beforeUnlist = nil
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

// TestUnlistOnAStaleViewKeepsTheCopyOfANodeBack: a round's view of the
// members is read when it starts. R=1 and a body listed on two
// followers; the round began while one of them (back) was removed, and
// it has joined again since (its data directory kept, its copy there).
// The other (gone) is then removed, its removal passing because back's
// copy is listed. The round, still counting back as removed and gone as
// a member, must not unlist back's copy: the body would be listed only
// on the removed node, and back's unlisted copy left to the orphan
// sweep.
func TestUnlistOnAStaleViewKeepsTheCopyOfANodeBack(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
	})
	l := c.leader(time.Second)
	ctx := ctxT(t, 60*time.Second)
	fs := c.followers(l)
	gone, back := fs[0], fs[1]
	body := []byte("Subject: listed twice\r\n\r\nunder R=1\r\n")
	var h storage.Hash
	for _, f := range fs {
		var err error
		if h, _, err = f.bodies.Put(ctx, bytes.NewReader(body), nil); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, l, &fsm.Deliver{ID: "stale-unlist", Hash: h.String(), Size: int64(len(body)),
		Replicas: []string{gone.ID(), back.ID()}, Mailboxes: []string{"a@example.com"}, InternalDate: time.Now().UnixMilli()})
	live, err := l.liveness()
	if err != nil {
		t.Fatal(err)
	}
	delete(live.members, back.ID()) // the round's view: back was removed then
	delete(live.alive, back.ID())
	waitFor(t, 10*time.Second, "both followers audited", func() bool { return gone.audited.Load() && back.audited.Load() })
	if err := l.Remove(ctx, gone.ID(), false); err != nil {
		t.Fatalf("removing %s while %s's copy is listed: %v", gone.ID(), back.ID(), err)
	}
	rec, err := l.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.repairBody(ctx, live, 1, fsm.BodyRecord{Hash: h.String(), Body: rec}); err != nil {
		t.Fatal(err)
	}
	after, err := l.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(after.Replicas, back.ID()) {
		t.Fatalf("body listed on %v after the stale round; %s, a member holding it, was unlisted", after.Replicas, back.ID())
	}
}
