package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

func deliveryCluster(t *testing.T) *testCluster {
	return deliveryClusterWith(t, nil)
}

func deliveryClusterWith(t *testing.T, tweak func(*Config)) *testCluster {
	c := newTestClusterWith(t, 3, tweak)
	l := c.leader(5 * time.Second)
	mustAdd(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustAdd(t, l, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}, {Address: "c@example.com"}, {Address: "full@example.com", QuotaBytes: 16}}})
	mustAdd(t, l, &fsm.ForwardAdd{Address: "team@example.com", Targets: []string{"a@example.com", "b@example.com"}})
	mustAdd(t, l, &fsm.ForwardAdd{Address: "out@example.com", Targets: []string{"x@elsewhere.net"}})
	// Every node must have published its member record before it can be
	// named as a replica, and every node must have applied them all: a
	// test that delivers through a follower still behind counted one
	// live member ("1 nodes for a write quorum of 2").
	waitFor(t, 5*time.Second, "member records on every node", func() bool {
		for _, n := range c.nodes {
			if m, _ := n.State().Members(); len(m) != 3 {
				return false
			}
		}
		return true
	})
	return c
}

func TestDeliverStoresOnceOnRReplicas(t *testing.T) {
	c := deliveryCluster(t)
	f := c.follower()
	ctx := ctxT(t, 10*time.Second)
	var boxes []string
	for _, rcpt := range []string{"team@example.com", "b@example.com", "C@example.com"} {
		mb, err := f.Resolve(ctx, rcpt)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mb.Mailboxes {
			if !strings.Contains(strings.Join(boxes, ","), m) {
				boxes = append(boxes, m)
			}
		}
	}
	body := bytes.Repeat([]byte("Subject: hi\r\n\r\nhello world\r\n"), 5000)
	res, err := f.Deliver(ctx, Message{From: "s@elsewhere.net", Mailboxes: boxes, Received: time.Now()}, bytes.NewReader(body))
	if err != nil || len(res.Rejected) != 0 {
		t.Fatalf("deliver: %+v %v", res, err)
	}
	h := storage.HashBytes(body)
	holders := 0
	for id, n := range c.nodes {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		for _, mb := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			msgs, err := n.State().Messages(mb, "INBOX", 0, 0)
			if err != nil || len(msgs) != 1 || msgs[0].Hash != h.String() || msgs[0].UID != 1 {
				t.Fatalf("%s on %s: %+v %v", mb, id, msgs, err)
			}
		}
		if ok, _, _ := n.bodies.Has(ctx, h); ok {
			holders++
		}
	}
	b, _ := f.State().Body(h.String())
	if holders != 2 || len(b.Replicas) != 2 || b.Refs != 3 {
		t.Fatalf("body on %d nodes, record %+v; want 2 replicas, 3 refs", holders, b)
	}
}

func TestResolveErrors(t *testing.T) {
	c := deliveryCluster(t)
	n := c.follower()
	ctx := ctxT(t, 10*time.Second)
	// A 20-byte message passes RCPT (0 of 16 bytes used) and, once
	// accepted, is never dropped for quota: the mailbox overshoots, and the
	// next RCPT is refused.
	res, err := n.Deliver(ctx, Message{Mailboxes: []string{"full@example.com"}, Received: time.Now()}, bytes.NewReader([]byte("0123456789abcdefghij")))
	if err != nil || len(res.Rejected) != 0 {
		t.Fatal(res, err)
	}
	// Deliver returns once the leader applied the entry; this follower
	// catches up within a commit round.
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	cases := map[string]error{
		"nobody@example.com": ErrUnknownRecipient,
		"a@not-hosted.org":   ErrNotLocal,
		"full@example.com":   ErrOverQuota,
		"bad address":        ErrUnknownRecipient,
	}
	if res, err := n.Resolve(ctx, "out@example.com"); err != nil || len(res.Mailboxes) != 0 || fmt.Sprint(res.External) != "[x@elsewhere.net]" {
		t.Errorf("external forward: %+v %v", res, err)
	}
	for rcpt, want := range cases {
		if _, err := n.Resolve(ctx, rcpt); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", rcpt, err, want)
		}
	}
}

func TestDeliverNeedsWriteQuorum(t *testing.T) {
	c := deliveryCluster(t)
	l := c.leader(time.Second)
	var down []*Node
	for _, n := range c.nodes {
		if n != l {
			down = append(down, n)
		}
	}
	// With one peer gone, R=2 still finds a replica.
	down[0].Kill()
	delete(c.nodes, down[0].ID())
	ctx := ctxT(t, 10*time.Second)
	if _, err := l.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("one peer down")); err != nil {
		t.Fatalf("with one peer down: %v", err)
	}
	// With both peers gone there is no quorum and no second replica: the
	// delivery is refused as temporary, never acknowledged.
	down[1].Kill()
	delete(c.nodes, down[1].ID())
	short, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := l.Deliver(short, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("no quorum"))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no quorum: %v", err)
	}
}

func TestOrphanBodiesAreCollected(t *testing.T) {
	c := deliveryCluster(t)
	n := c.follower()
	ctx := ctxT(t, 10*time.Second)
	// A committed delivery, and a body written but never committed (as a
	// failed delivery leaves behind).
	if _, err := n.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	orphan, _, err := n.bodies.Put(ctx, strings.NewReader("never committed"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing goes.
	if count, _, err := n.SweepOrphans(ctx, time.Hour); err != nil || count != 0 {
		t.Fatalf("sweep inside grace: %d %v", count, err)
	}
	count, freed, err := n.SweepOrphans(ctx, 0)
	if err != nil || count != 1 || freed != int64(len("never committed")) {
		t.Fatalf("sweep: %d %d %v", count, freed, err)
	}
	if ok, _, _ := n.bodies.Has(ctx, orphan); ok {
		t.Fatal("orphan survived")
	}
	if ok, _, _ := n.bodies.Has(ctx, storage.HashBytes([]byte("kept"))); !ok {
		t.Fatal("a referenced body was collected")
	}
}

func TestReadBodyFromAnyNodeAndFallBack(t *testing.T) {
	c := deliveryCluster(t)
	ctx := ctxT(t, 10*time.Second)
	body := strings.Repeat("a body worth reading\r\n", 10000)
	l := c.leader(time.Second)
	if _, err := l.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	h := storage.HashBytes([]byte(body))
	rec, _ := l.State().Body(h.String())
	var holders []*Node
	var reader *Node
	for _, n := range c.nodes {
		n.Barrier(ctx)
		if ok, _, _ := n.bodies.Has(ctx, h); ok {
			holders = append(holders, n)
		} else {
			reader = n
		}
	}
	if len(holders) != 2 || reader == nil || len(rec.Replicas) != 2 {
		t.Fatalf("holders %d, record %+v", len(holders), rec)
	}
	// Kill one replica holder; the node without a copy still reads it from
	// the other, whichever the directory lists first.
	holders[0].Kill()
	delete(c.nodes, holders[0].ID())
	rd, err := reader.openBody(ctx, h.String())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || string(got) != body {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
}

// TestStalledReplicaIsDropped: a peer that accepts a body upload and never
// answers (a paused node) must not hold up the delivery; the body goes to
// another node instead.
func TestStalledReplicaIsDropped(t *testing.T) {
	c := deliveryCluster(t)
	l := c.leader(time.Second)
	var stalled *Node
	for _, n := range c.nodes {
		n.cfg.ReplicaTimeout = time.Second // short, with room for a slow fsync on the healthy peer
		if n != l && stalled == nil {
			stalled = n
		}
	}
	stalled.stallBodies.Store(true)
	ctx := ctxT(t, 10*time.Second)
	for i := 0; i < 4; i++ {
		start := time.Now()
		body := fmt.Sprintf("message %d", i)
		if _, err := l.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
			t.Fatalf("delivery %d with a stalled peer: %v", i, err)
		}
		if el := time.Since(start); el > 4*time.Second {
			t.Fatalf("delivery %d took %v", i, el)
		}
		b, _ := l.State().Body(storage.HashBytes([]byte(body)).String())
		for _, id := range b.Replicas {
			if id == stalled.ID() {
				t.Fatalf("stalled node listed as a replica: %+v", b)
			}
		}
	}
}

// A body whose reader fails with io.ErrUnexpectedEOF (go-smtp's DATA
// reader, when the client's connection is lost) is a failed read, not a
// short message: Deliver fails and stores nothing (Promise 1: the client
// was never answered and will send the whole message again).
func TestDeliverRefusesTruncatedBody(t *testing.T) {
	c := deliveryCluster(t)
	f := c.follower()
	ctx := ctxT(t, 10*time.Second)
	body := io.MultiReader(strings.NewReader("Subject: half\r\n\r\nthe first half"), failingReader{io.ErrUnexpectedEOF})
	_, err := f.Deliver(ctx, Message{From: "s@elsewhere.net", Mailboxes: []string{"a@example.com"}, Received: time.Now()}, body)
	if err == nil {
		t.Fatal("Deliver of a truncated body succeeded")
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, err := f.State().Messages("a@example.com", "INBOX", 0, 0); err != nil || len(msgs) != 0 {
		t.Fatalf("a@example.com holds %+v (%v), want nothing", msgs, err)
	}
}

// failingReader fails every read with err.
type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }
