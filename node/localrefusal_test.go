package node

import (
	"bytes"
	"io"
	"testing"
	"time"

	"powermail/storage"
)

// A large body this node does not hold is copied into its store from a
// replica when the store has room. When the free-space check passed but
// the store then refused the copy (its disk filled meanwhile: here the
// store's log write meets ENOSPC), the refusal came back through
// eachReplica as the replica's failure: every replica was marked failed
// for this node's disk, and the read failed, though a store that cannot
// take a copy streams the body instead. Only the local refusal counts.
func TestLocalRefusalOfACopyIsNotTheReplicas(t *testing.T) {
	tog, fs := enospcFS()
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.RemoteReadMax = 4 << 10
		if cfg.ID == "n3" {
			cfg.BodyFS = fs
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n1, n3 := c.nodes["n1"], c.nodes["n3"]
	body := bytes.Repeat([]byte("Subject: big\r\n\r\nlarge body line\r\n"), 3000) // ~100 KiB
	if _, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	h := storage.HashBytes(body)
	if err := n3.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := n3.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	if err := n3.bodies.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	if err := n3.bodies.CheckSpace(int64(len(body))); err != nil {
		t.Fatalf("n3 has no room before the fault: %v", err)
	}
	tog.On()
	defer tog.Off()
	b, err := n3.OpenBody(ctx, h.String())
	if err != nil {
		t.Fatalf("open on a node whose store refused the copy: %v", err)
	}
	defer b.Close()
	if got, err := io.ReadAll(b); err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read on a node whose store refused the copy: %d of %d bytes, %v", len(got), len(body), err)
	}
	if n3.bodies.Failed() == nil {
		t.Fatal("the body store did not fail; the test injected nothing")
	}
	for _, id := range rec.Replicas {
		if id != n3.ID() && !n3.health.ok(id) {
			t.Errorf("replica %s marked failed for n3's own store refusing the copy", id)
		}
	}
}
