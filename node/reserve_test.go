package node

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/storage"
)

// TestNodeAtItsReserveRefusesAndPeersPlaceElsewhere: a node whose disk is
// down to its free-space reserve refuses its own deliveries as temporary
// (ErrInsufficientStorage, 452 4.3.1 in SMTP) without failing its store,
// and once its peers have polled its stats they place copies elsewhere.
func TestNodeAtItsReserveRefusesAndPeersPlaceElsewhere(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		if cfg.ID == "n3" {
			cfg.MinFreeBytes = 1 << 62 // more than any disk has
		}
	})
	ctx := ctxT(t, 30*time.Second)
	full := c.nodes["n3"]
	_, err := full.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("to the full node"))
	if !errors.Is(err, ErrInsufficientStorage) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("delivery through the full node: %v", err)
	}
	if err := full.CheckSpace(100); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("CheckSpace on the full node: %v", err)
	}
	if err := c.nodes["n1"].CheckSpace(100); err != nil {
		t.Fatalf("CheckSpace on a node with room: %v", err)
	}
	if st, err := full.bodies.Stats(ctx); err != nil || st.Room() != 0 {
		t.Fatalf("full node's store: room %d, %v", st.Room(), err)
	}

	for _, id := range []string{"n1", "n2"} {
		waitFor(t, 5*time.Second, id+" sees n3 full", func() bool { return c.nodes[id].placement.full("n3") })
	}
	st, err := c.nodes["n1"].Status(ctx)
	if err != nil || st.Health != "degraded" {
		t.Fatalf("cluster health %q with a full node (%v)", st.Health, err)
	}
	for _, m := range st.Nodes {
		if m.Full() != (m.ID == "n3") {
			t.Fatalf("status of %s: free %d, reserve %d, full %v", m.ID, m.FreeBytes, m.MinFreeBytes, m.Full())
		}
	}
	for i := range 10 {
		n := c.nodes[fmt.Sprintf("n%d", 1+i%2)]
		body := fmt.Sprintf("message %d", i)
		if _, err := n.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
			t.Fatalf("delivery %d through %s: %v", i, n.ID(), err)
		}
	}
	for _, id := range []string{"n1", "n2"} {
		if !c.nodes[id].health.ok("n3") {
			t.Fatalf("%s sent a copy to the full node, which refused it", id)
		}
	}
	l := c.leader(time.Second)
	if err := l.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := l.State().Messages("a@example.com", "INBOX", 0, 0)
	if err != nil || len(msgs) != 10 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		b, err := l.State().Body(m.Hash)
		if err != nil || len(b.Replicas) != 2 || slices.Contains(b.Replicas, "n3") {
			t.Fatalf("body %s on %v (%v): the full node holds a copy, or R is not met", m.Hash, b.Replicas, err)
		}
	}
}

// TestFullPeersMakeAStorageShortfall: when the node itself has room but
// too few peers do for the write quorum, the refusal says insufficient
// storage (452 4.3.1 in SMTP), not merely too few replicas (451 4.3.0).
func TestFullPeersMakeAStorageShortfall(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		if cfg.ID != "n1" {
			cfg.MinFreeBytes = 1 << 62
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n1 := c.nodes["n1"]
	for _, id := range []string{"n2", "n3"} {
		waitFor(t, 5*time.Second, "n1 sees "+id+" full", func() bool { return n1.placement.full(id) })
	}
	if err := n1.CheckSpace(100); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("CheckSpace on n1, which has room but no peer with room: %v", err)
	}
	_, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("nowhere to copy it"))
	if !errors.Is(err, ErrInsufficientStorage) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("delivery with every peer full: %v", err)
	}
}

// TestFullPeerRefusalFallsBackToASpare: before a peer's poll shows that
// it is full, a delivery may choose it; its refusal (ErrNoSpace on the
// peer) is a failed copy like any other: the body goes to a spare node,
// the delivery succeeds with R copies, and none of them is on the full
// node.
func TestFullPeerRefusalFallsBackToASpare(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = time.Hour // the first poll only, at start
		if cfg.ID == "n3" {
			cfg.MinFreeBytes = 1 << 62
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n1 := c.nodes["n1"]
	// n1's last poll, as n1 saw it, said n3 had far more room than n2:
	// n3 filled since, and n1 chooses it first.
	n1.placement.set("n2", storage.Stats{FSAvail: 1 << 30})
	n1.placement.set("n3", storage.Stats{FSAvail: 1 << 62})
	for i := range 6 {
		if _, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(fmt.Sprintf("message %d", i))); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if n1.health.ok("n3") {
		t.Fatal("n1 never tried the full node; the test checks nothing")
	}
	msgs, err := n1.State().Messages("a@example.com", "INBOX", 0, 0)
	if err != nil || len(msgs) != 6 {
		t.Fatalf("%d messages, %v", len(msgs), err)
	}
	for _, m := range msgs {
		b, err := n1.State().Body(m.Hash)
		if err != nil || len(b.Replicas) != 2 || slices.Contains(b.Replicas, "n3") {
			t.Fatalf("body %s on %v (%v)", m.Hash, b.Replicas, err)
		}
	}
}

// TestPeersFullSinceTheirPollMakeAStorageShortfall: peers that filled
// since this node last polled them refuse their copies; the refusal is
// then checked against their stats, read again at once, so the delivery
// says insufficient storage (452 4.3.1 in SMTP) rather than a passing
// failure (451 4.3.0), and the next delivery knows without trying.
func TestPeersFullSinceTheirPollMakeAStorageShortfall(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = time.Hour // the first poll only, at start
		if cfg.ID != "n1" {
			cfg.MinFreeBytes = 1 << 62
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n1 := c.nodes["n1"]
	for _, id := range []string{"n2", "n3"} {
		n1.placement.set(id, storage.Stats{FSAvail: 1 << 40}) // as last polled
	}
	_, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("nowhere to copy it"))
	if !errors.Is(err, ErrInsufficientStorage) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("delivery with every peer full since its last poll: %v", err)
	}
	if err := n1.CheckSpace(100); !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("CheckSpace after the refusals: %v", err)
	}
}
