package node

import (
	"context"
	"testing"
	"time"
)

// TestRemovedListingWithNowhereToCopyLetsScansSkip: R=3 on three nodes,
// and one is lost and removed. Every body is then short with a copy on
// each member left, listed on the removed node too until a copy can
// replace it. Nothing can change until a member joins (which moves the
// placement mark), so periodic rounds must not read every body record
// again each interval; once a node joins, the bodies get their third
// copy and lose the removed node's listing.
func TestRemovedListingWithNowhereToCopyLetsScansSkip(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 3, WriteQuorum: 2}
	})
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 6, 500)
	assertRedundant(t, c, l, hashes, 3)
	ctx := ctxT(t, 60*time.Second)
	victim := c.followers(l)[0]
	victim.Kill()
	delete(c.nodes, victim.ID())
	if err := l.Remove(ctx, victim.ID(), false); err != nil {
		t.Fatal(err)
	}
	if !roundScanned(t, ctx, l) {
		t.Fatal("the first periodic round after the removal did not scan")
	}
	for i := range 3 {
		if roundScanned(t, ctx, l) {
			t.Fatalf("periodic round %d scanned again, though no body can get a copy until a node joins", i+2)
		}
	}
	c.start("n4", false, l.AdminAddr())
	waitFor(t, 10*time.Second, "the new node polled", func() bool { return l.placement.downFor("n4", l.started) < 300*time.Millisecond })
	if !roundScanned(t, ctx, l) {
		t.Fatal("no scan after a node joined")
	}
	assertRedundant(t, c, l, hashes, 3)
}

// roundScanned runs one periodic repair round on the leader l and tells
// whether it scanned the bodies (rather than finding nothing changed).
func roundScanned(t *testing.T, ctx context.Context, l *Node) bool {
	t.Helper()
	before := l.repair.get().LastScan
	st, err := l.repairRound(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	return st.LastScan != before
}
