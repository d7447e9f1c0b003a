package node

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"powermail/storage"
)

// TestFullNodeReadsLargeBodyHeldElsewhere: a node at its free-space
// reserve holds none of the mail that arrives while it is full (peers
// place copies elsewhere), so every such message it serves to IMAP or
// POP3 is read from a replica. A body larger than RemoteReadMax was read
// by copying it into the local store, which refuses it for want of
// space: the full node could not serve large messages at all.
func TestFullNodeReadsLargeBodyHeldElsewhere(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RemoteReadMax = 4 << 10
		if cfg.ID == "n3" {
			cfg.MinFreeBytes = 1 << 62 // more than any disk has
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n1, full := c.nodes["n1"], c.nodes["n3"]
	waitFor(t, 5*time.Second, "n1 sees n3 full", func() bool { return n1.placement.full("n3") })
	body := bytes.Repeat([]byte("Subject: big\r\n\r\nlarge body line\r\n"), 3000) // ~100 KiB
	if _, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	h := storage.HashBytes(body)
	if err := full.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	readAllBody(ctx, t, full, h, body)

	// Streamed bytes are checked against the body's hash: replicas whose
	// copies are damaged behind valid chunk checksums fail the read.
	for _, id := range []string{"n1", "n2"} {
		if err := c.nodes[id].bodies.DamageKeepCRC(ctx, h, 1); err != nil {
			t.Fatal(err)
		}
	}
	b, err := full.OpenBody(ctx, h.String())
	if err != nil {
		return // refused at once: fine
	}
	defer b.Close()
	if got, err := io.ReadAll(b); err == nil {
		t.Fatalf("read %d bytes of a damaged body without an error", len(got))
	}
}

// readAllBody opens h on n and checks that it reads back as want, whole
// and from an offset (IMAP partial FETCH seeks).
func readAllBody(ctx context.Context, t *testing.T, n *Node, h storage.Hash, want []byte) {
	t.Helper()
	b, err := n.OpenBody(ctx, h.String())
	if err != nil {
		t.Fatalf("open body on %s: %v", n.ID(), err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read body on %s: %d of %d bytes, %v", n.ID(), len(got), len(want), err)
	}
	if b.Size() != int64(len(want)) {
		t.Fatalf("size %d, want %d", b.Size(), len(want))
	}
	off := int64(len(want) / 3)
	if _, err := b.Seek(off, io.SeekStart); err != nil {
		t.Fatalf("seek: %v", err)
	}
	part := make([]byte, 100)
	if _, err := io.ReadFull(b, part); err != nil || !bytes.Equal(part, want[off:off+100]) {
		t.Fatalf("read at %d: %q, %v", off, part, err)
	}
}
