package node

import (
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"powermail/storage"
)

// TestPausedLeaderHoldsNoScrub: a leader paused while a follower's scrub
// kicks its repair (a SIGSTOPped process keeps its connections open, so
// the kick's request is never answered) must not hold the scrub: the
// kick is sent in the background. And the kick that waits for ever must
// not hold the kicks after it either: each gives up after
// repairKickTimeout, so a later kick reaches the leader once it answers
// again, and its round repairs both corrupt copies.
func TestPausedLeaderHoldsNoScrub(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 8, 3000)
	f := busiestFollower(t, c, l, hashes)
	var held []storage.Hash
	for _, h := range hashes {
		if b, err := l.State().Body(h.String()); err == nil && len(held) < 2 && slices.Contains(b.Replicas, f.ID()) {
			held = append(held, h)
		}
	}
	if len(held) < 2 {
		t.Fatalf("%s holds %d of the bodies, want 2", f.ID(), len(held))
	}
	ctx := ctxT(t, 30*time.Second)
	scrub := func(h storage.Hash) {
		t.Helper()
		if err := f.bodies.Damage(ctx, h); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, corrupt, err := f.Scrub(ctx)
		if err != nil || corrupt != 1 {
			t.Fatalf("scrub: %d corrupt, %v", corrupt, err)
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Fatalf("the scrub took %v with the leader paused", el)
		}
	}

	// The leader takes the first kick and never answers it (nor runs
	// the round), like a paused process; the kicks after it are served.
	var kicks atomic.Int64
	hold := func(r *http.Request) bool {
		if kicks.Add(1) > 1 {
			return false
		}
		<-r.Context().Done()
		return true
	}
	l.onRepairKick.Store(&hold)
	scrub(held[0])
	waitFor(t, 5*time.Second, "the kick held by the leader", func() bool { return kicks.Load() == 1 })
	before := time.Now()
	scrub(held[1])
	// A loaded machine can move the leadership meanwhile; the kick then
	// goes to the new leader, whose round counts as well.
	waitFor(t, repairKickTimeout+10*time.Second, "a round kicked by the second report", func() bool {
		for _, n := range c.nodes {
			if n.repair.get().LastScan.After(before) {
				return true
			}
		}
		return false
	})
	assertRedundant(t, c, l, hashes, 2)
}
