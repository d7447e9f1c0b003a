package node

import (
	"slices"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// TestVerifyJudgesAMovedBodyByItsListingNow: storage verify reads every
// body record once and then checks replicas for a while. A body that
// repair or rebalance moved in between must not count as short, and one
// no longer referenced needs no replicas. (A 30-minute jepsen run failed
// its final verify this way while rebalance was still moving bodies.)
func TestVerifyJudgesAMovedBodyByItsListingNow(t *testing.T) {
	c, l, h, rec := oneBodyCluster(t)
	ctx := ctxT(t, 20*time.Second)
	live, err := l.liveness()
	if err != nil {
		t.Fatal(err)
	}
	var other string
	for id := range c.nodes {
		if !slices.Contains(rec.Replicas, id) {
			other = id
		}
	}
	// The record as a scan that began before a move saw it: one listed
	// replica is on a node that does not hold the body (any more).
	stale := fsm.BodyRecord{Hash: h.String(), Body: rec}
	stale.Replicas = []string{rec.Replicas[0], other}
	if ok, failed := l.verifyReplicas(ctx, live, stale); ok != 1 || failed[other] == nil {
		t.Fatalf("the stale listing itself: %d verified, failures %v; want 1 and %s failing", ok, failed, other)
	}
	ok, failed, referenced := l.verifyBody(ctx, live, 2, stale)
	if !referenced || ok != 2 || len(failed) != 0 {
		t.Fatalf("verifyBody of a moved body: %d verified, failures %v, referenced %v; want 2, none, true", ok, failed, referenced)
	}
	gone := fsm.BodyRecord{Hash: storage.HashBytes([]byte("never stored")).String(), Body: fsm.Body{Refs: 1, Replicas: []string{other}}}
	if ok, failed, referenced := l.verifyBody(ctx, live, 2, gone); referenced {
		t.Fatalf("a body no longer referenced: %d verified, failures %v, still counted", ok, failed)
	}
}
