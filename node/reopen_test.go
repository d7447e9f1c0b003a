package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"powermail/storage"
)

// filledDiskFS is the real disk under a body store, made to look full:
// while tog is on the store's log writes fail with ENOSPC, and while
// full is set statfs reports nothing free.
type filledDiskFS struct {
	vfs.FS
	tog  *errorfs.Toggle
	full atomic.Bool
}

func newFilledDiskFS() *filledDiskFS {
	tog, fs := enospcFS()
	return &filledDiskFS{FS: fs, tog: tog}
}

func (f *filledDiskFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	if f.full.Load() {
		du.AvailBytes = 0
	}
	return du, err
}

// TestFailedBodyStoreReopens: a node whose disk filled under its body
// store (its log write failed with ENOSPC) stays failed while the disk
// is full, and once the operator frees space it reopens the store by
// itself: acknowledged bodies are still there, it is ready again, its
// peers place copies on it again, and mail delivered through it is
// stored on R nodes, itself among them.
func TestFailedBodyStoreReopens(t *testing.T) {
	disk := newFilledDiskFS()
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		if cfg.ID == "n3" {
			cfg.BodyFS = disk
			cfg.BodyStoreReopenInterval = 200 * time.Millisecond
		}
	})
	ctx := ctxT(t, 60*time.Second)
	n3 := c.nodes["n3"]
	held := []byte("Subject: held\r\n\r\nheld by n3 before its disk filled\r\n")
	if _, err := n3.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(held)); err != nil {
		t.Fatal(err)
	}
	// An IMAP FETCH of the local copy is under way across the failure
	// and the reopen: it goes on from a replica, whole and unchanged.
	fetch, err := n3.OpenBody(ctx, storage.HashBytes(held).String())
	if err != nil {
		t.Fatal(err)
	}
	defer fetch.Close()
	first := make([]byte, 7)
	if _, err := io.ReadFull(fetch, first); err != nil {
		t.Fatal(err)
	}

	disk.tog.On() // the log write fails first; statfs says so after
	if _, err := n3.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("Subject: lost\r\n\r\nnowhere to go\r\n")); err == nil {
		t.Fatal("delivery acknowledged on a full disk")
	}
	if n3.bodies.Failed() == nil {
		t.Fatal("the body store did not fail; the test injected nothing")
	}
	disk.full.Store(true)

	time.Sleep(time.Second) // five reopen intervals: each refused, the disk is full
	if n3.bodies.Failed() == nil {
		t.Fatal("the body store was reopened on a full disk")
	}
	if r := n3.readiness(ctx); !errors.Is(r.err, storage.ErrFailed) {
		t.Fatalf("readiness while failed: %v", r.err)
	}

	disk.tog.Off() // the operator freed space
	disk.full.Store(false)
	waitFor(t, 10*time.Second, "n3's body store reopened", func() bool { return n3.bodies.Failed() == nil })
	if err := n3.bodies.Verify(ctx, storage.HashBytes(held)); err != nil {
		t.Fatalf("acknowledged body after the reopen: %v", err)
	}
	rest, err := io.ReadAll(fetch)
	if got := append(first, rest...); err != nil || !bytes.Equal(got, held) {
		t.Fatalf("read across the reopen: %q, %v; want %q", got, err, held)
	}
	if r := n3.readiness(ctx); r.err != nil {
		t.Fatalf("n3 not ready after its store reopened: %v", r.err)
	}
	if got := gaugeValues(t, n3)["powermail_body_store_failed"]; got != 0 {
		t.Fatalf("powermail_body_store_failed = %v after the reopen", got)
	}
	if err := n3.CheckSpace(100); err != nil {
		t.Fatalf("CheckSpace after the reopen: %v", err)
	}
	for _, id := range []string{"n1", "n2"} {
		n := c.nodes[id]
		waitFor(t, 10*time.Second, id+" places on n3 again", func() bool {
			return n.health.ok("n3") && n.placement.downFor("n3", n.started) < time.Second && !n.placement.full("n3")
		})
	}

	for i := range 3 {
		body := fmt.Appendf(nil, "Subject: after %d\r\n\r\ndelivered through n3 after its store came back\r\n", i)
		if _, err := n3.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
			t.Fatalf("delivery %d through n3 after the reopen: %v", i, err)
		}
		wantStoredOnR(ctx, t, c, storage.HashBytes(body), "n3")
	}
}

// wantStoredOnR checks that body h is listed on R nodes, holder among
// them, and that each listed node's store holds an intact copy.
func wantStoredOnR(ctx context.Context, t *testing.T, c *testCluster, h storage.Hash, holder string) {
	t.Helper()
	l := c.leader(5 * time.Second)
	if err := l.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := l.State().Settings()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := l.State().Body(h.String())
	if err != nil || len(rec.Replicas) != s.Replicas || !slices.Contains(rec.Replicas, holder) {
		t.Fatalf("body %s listed on %v (%v); want %d replicas, %s among them", h, rec.Replicas, err, s.Replicas, holder)
	}
	for _, id := range rec.Replicas {
		if err := c.nodes[id].bodies.Verify(ctx, h); err != nil {
			t.Fatalf("copy of %s on %s: %v", h, id, err)
		}
	}
}
