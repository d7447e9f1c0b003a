package node

import (
	"bytes"
	"io"
	"testing"
	"time"

	"powermail/storage"
)

// A replica that accepts connections but never answers (a paused node)
// costs a read the replica timeout before the next replica is asked.
// It is marked failed then, but every later read asked it first again,
// in the directory's order: while it stayed wedged, each FETCH of a
// large message on a full node, and each read of a body this node does
// not hold, waited the timeout out again. Replicas that failed recently
// are asked last.
func TestReadsAskAStalledReplicaLast(t *testing.T) {
	const timeout = time.Second
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RemoteReadMax = 4 << 10
		cfg.ReplicaTimeout = timeout
		if cfg.ID == "n3" {
			cfg.MinFreeBytes = 1 << 62 // more than any disk has: n3 holds nothing, and streams
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n1, full := c.nodes["n1"], c.nodes["n3"]
	waitFor(t, 5*time.Second, "n1 sees n3 full", func() bool { return n1.placement.full("n3") })
	body := bytes.Repeat([]byte("Subject: big\r\n\r\nlarge body line\r\n"), 3000)
	if _, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if err := full.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	h := storage.HashBytes(body)
	rec, err := full.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	c.nodes[rec.Replicas[0]].stallBodies.Store(true) // the one asked first

	read := func() time.Duration {
		t.Helper()
		start := time.Now()
		b, err := full.OpenBody(ctx, h.String())
		if err != nil {
			t.Fatalf("open with one replica stalled: %v", err)
		}
		defer b.Close()
		got, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("read with one replica stalled: %d of %d bytes, %v", len(got), len(body), err)
		}
		return time.Since(start)
	}
	if d := read(); d < timeout {
		t.Fatalf("the first read took %v: the stalled replica was not asked first, the test shows nothing", d)
	}
	if d := read(); d >= timeout {
		t.Fatalf("the second read took %v: the replica that just stalled was asked first again", d)
	}
}
