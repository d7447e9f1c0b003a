package node

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"powermail/fsm"
)

// silentPeer takes over a stopped node's cluster address with a listener
// that accepts connections and never answers, as a paused process's
// kernel does.
func silentPeer(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
}

// TestGCRoundIsNotHeldByAPausedMember: a member that accepts connections
// and never answers (paused) cost a collection round a call's timeout
// (the 5 s handshake on a new connection, up to a minute on one already
// open) for every unreferenced body, so a few thousand expunged messages
// held all collection for hours. A member that is down
// past the repair grace is not asked: a body it is listed for waits for
// it (as before), and every other body is collected.
func TestGCRoundIsNotHeldByAPausedMember(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) { cfg.GCInterval = time.Hour })
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 6, 300)
	victim := c.followers(l)[0]
	addr := victim.cfg.ClusterAddr
	if m, err := l.memberRecord(victim.ID()); err == nil && m != nil {
		addr = m.ClusterAddr
	}
	ctx := ctxT(t, 60*time.Second)
	if _, err := l.Expunge(ctx, "a@example.com", "INBOX", nil, false); err != nil {
		t.Fatal(err)
	}
	victim.Kill()
	delete(c.nodes, victim.ID())
	silentPeer(t, addr)
	waitFor(t, 15*time.Second, "the paused member down past the grace", func() bool {
		return l.placement.downFor(victim.ID(), l.started) > l.cfg.RepairGrace+200*time.Millisecond
	})
	round := ctxT(t, 20*time.Second)
	if _, _, err := l.CollectGarbage(round); err != nil {
		t.Fatalf("collection round with a paused member: %v", err)
	}
	for _, h := range hashes {
		b, err := l.State().Body(h.String())
		onVictim := err == nil && slices.Contains(b.Replicas, victim.ID())
		if !onVictim && !errors.Is(err, fsm.ErrNotFound) {
			t.Errorf("body %s, not on the paused member: %+v %v, want it collected", h, b, err)
		}
		if onVictim && b.Collecting == 0 {
			t.Errorf("body %s on the paused member: %+v, want it tombstoned", h, b)
		}
	}
}
