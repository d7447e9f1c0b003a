package node

import (
	"context"
	"testing"
	"time"

	"powermail/storage"
)

// TestVerifyOnTheHolderReportsItsOwnCorruptCopy: `storage verify` sent
// to a node that holds a damaged copy checks that copy in its own store.
// Corruption found there is reported as it is when a peer's copy fails
// (the /rpc/verify handler): the copy is unlisted and deleted, and repair
// restores R from the good one, instead of waiting for the daily scrub.
func TestVerifyOnTheHolderReportsItsOwnCorruptCopy(t *testing.T) {
	c, l, h, rec := oneBodyCluster(t)
	ctx := ctxT(t, 30*time.Second)
	holder := c.nodes[rec.Replicas[0]]
	if err := holder.bodies.Damage(ctx, h); err != nil {
		t.Fatal(err)
	}
	p, err := holder.VerifyAll(ctx, func(VerifyProgress) {})
	// The damaged copy counts against R: as unverified on the holder, or,
	// when its report has already unlisted it, as a body short of R.
	if err != nil || p.Unverified[holder.ID()] != 1 && (p.Short != 1 || len(p.ShortBodies) != 1 || p.ShortBodies[0] != h.String()) {
		t.Fatalf("verify on the holder: %+v, %v", p, err)
	}
	// The report kicks a repair round, which may copy the body back to
	// the holder from the good replica: either way, R copies that verify.
	waitFor(t, 10*time.Second, "the corrupt copy reported and R good copies listed", func() bool {
		return holder.corrupt.Load() > 0 && listedCopiesVerify(c, l, h, 2)
	})
}

// listedCopiesVerify reports whether h is listed on want replicas, each
// a running node whose copy verifies.
func listedCopiesVerify(c *testCluster, via *Node, h storage.Hash, want int) bool {
	b, err := via.State().Body(h.String())
	if err != nil || len(b.Replicas) != want {
		return false
	}
	for _, id := range b.Replicas {
		n := c.nodes[id]
		if n == nil || n.bodies.Verify(context.Background(), h) != nil {
			return false
		}
	}
	return true
}
