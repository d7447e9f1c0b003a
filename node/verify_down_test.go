package node

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestVerifyDoesNotWaitOnADownMember: `storage verify` counts only the
// copies it can read. One on a member down past the repair grace cannot
// be; asking a paused member anyway cost each body listed there a call's
// timeout (the 5 s handshake on a new connection, up to a minute on one
// already open), in each of verify's two looks at a short body. The copy
// is counted as not verified, saying why.
func TestVerifyDoesNotWaitOnADownMember(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 8, 300)
	// The follower holding the most copies: with R=2 of three nodes every
	// body is on at least one follower, so it holds some.
	var victim *Node
	listed := int64(0)
	for _, f := range c.followers(l) {
		n := int64(0)
		for _, h := range hashes {
			if b, err := l.State().Body(h.String()); err == nil && slices.Contains(b.Replicas, f.ID()) {
				n++
			}
		}
		if victim == nil || n > listed {
			victim, listed = f, n
		}
	}
	if listed == 0 {
		t.Fatalf("no follower holds any of %d bodies", len(hashes))
	}
	addr := victim.cfg.ClusterAddr
	if m, err := l.memberRecord(victim.ID()); err == nil && m != nil {
		addr = m.ClusterAddr
	}
	victim.Kill()
	delete(c.nodes, victim.ID())
	silentPeer(t, addr)
	waitFor(t, 15*time.Second, "the paused member down past the grace", func() bool {
		return l.placement.downFor(victim.ID(), l.started) > l.cfg.RepairGrace+200*time.Millisecond
	})
	p, err := l.VerifyAll(ctxT(t, 20*time.Second), func(VerifyProgress) {})
	if err != nil {
		t.Fatalf("verify with a paused member: %v", err)
	}
	why := p.FirstErrors[victim.ID()]
	if p.Unverified[victim.ID()] != listed || p.Short != listed || !strings.Contains(why, "down") {
		t.Fatalf("verify: %+v; want the %d copies on %s unverified, as down", p, listed, victim.ID())
	}
}
