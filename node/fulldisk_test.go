package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"powermail/storage"
)

// fullNodeWithLargeBody starts a delivery cluster whose n3 is at its
// free-space reserve, and delivers a body larger than RemoteReadMax
// through n1 once n1 knows: n3 holds no copy.
func fullNodeWithLargeBody(t *testing.T) (c *testCluster, full *Node, h storage.Hash, body []byte) {
	c = deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RemoteReadMax = 4 << 10
		if cfg.ID == "n3" {
			cfg.MinFreeBytes = 1 << 62 // more than any disk has
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n1, full := c.nodes["n1"], c.nodes["n3"]
	waitFor(t, 5*time.Second, "n1 sees n3 full", func() bool { return n1.placement.full("n3") })
	body = bytes.Repeat([]byte("Subject: big\r\n\r\nlarge body line\r\n"), 3000) // ~100 KiB
	if _, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if err := full.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	return c, full, storage.HashBytes(body), body
}

// TestFullNodeReadsLargeBodyHeldElsewhere: a node at its free-space
// reserve holds none of the mail that arrives while it is full (peers
// place copies elsewhere), so every such message it serves to IMAP or
// POP3 is read from a replica. A body larger than RemoteReadMax was read
// by copying it into the local store, which refuses it for want of
// space: the full node could not serve large messages at all.
func TestFullNodeReadsLargeBodyHeldElsewhere(t *testing.T) {
	c, full, h, body := fullNodeWithLargeBody(t)
	ctx := ctxT(t, 30*time.Second)
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
	part := make([]byte, min(100, int64(len(want))-off))
	if _, err := io.ReadFull(b, part); err != nil || !bytes.Equal(part, want[off:off+int64(len(part))]) {
		t.Fatalf("read at %d: %q, %v", off, part, err)
	}
}

// enospcFS returns a filesystem over the real disk whose writes to the
// body store's log fail with ENOSPC while the toggle is on: a disk that
// filled past the reserve (another process took the space, or the
// reserve is off), the store's WAL write fails and the store fails.
func enospcFS() (*errorfs.Toggle, vfs.FS) {
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") && op.Kind == errorfs.OpFileWrite {
			return fmt.Errorf("write %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})
	tog := &errorfs.Toggle{Injector: inj}
	return tog, errorfs.Wrap(vfs.Default, tog)
}

// failedStoreCluster starts a delivery cluster and fills n3's disk
// under its body store past the reserve (ENOSPC from the store's log):
// n3 holds one message, held, from before, and its delivery after the
// fault gets err.
func failedStoreCluster(t *testing.T) (c *testCluster, held []byte, err error) {
	tog, fs := enospcFS()
	c = deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		if cfg.ID == "n3" {
			cfg.BodyFS = fs
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n3 := c.nodes["n3"]
	held = []byte("Subject: held\r\n\r\nheld by n3 before its disk filled\r\n")
	if _, err := n3.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(held)); err != nil {
		t.Fatal(err)
	}
	if r := n3.readiness(ctx); r.err != nil {
		t.Fatalf("n3 not ready before the fault: %v", r.err)
	}
	tog.On()
	_, err = n3.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader("Subject: lost\r\n\r\nnowhere to go\r\n"))
	if n3.bodies.Failed() == nil {
		t.Fatal("the body store did not fail; the test injected nothing")
	}
	tog.Off() // the store stays failed until reopened
	return c, held, err
}

// TestDiskFilledPastTheReserve: when the disk fills anyway (another
// process took the space, or the reserve is off), the body store's write
// fails with ENOSPC. The delivery is refused as a full disk, 452 4.3.1
// upstream like the reserve's own refusal, not 451 4.3.0; never
// acknowledged, and the others deliver without the node.
func TestDiskFilledPastTheReserve(t *testing.T) {
	c, _, err := failedStoreCluster(t)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("delivery through a node whose disk filled: %v, want ErrUnavailable and ErrInsufficientStorage", err)
	}
	ctx := ctxT(t, 30*time.Second)
	for i := range 4 {
		n := c.nodes[fmt.Sprintf("n%d", 1+i%2)]
		if _, err := n.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(fmt.Sprintf("message %d", i))); err != nil {
			t.Fatalf("delivery %d through %s: %v", i, n.ID(), err)
		}
	}
	l := c.leader(time.Second)
	if err := l.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := l.State().Messages("a@example.com", "INBOX", 0, 0)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("%d messages (%v), want the one held and the four delivered after", len(msgs), err)
	}
}

// TestFailedBodyStoreReadsFromReplicas: a failed body store refuses
// every read until it is reopened, but the mail it held has copies on
// other replicas: the node serves it from them rather than failing every
// FETCH of it.
func TestFailedBodyStoreReadsFromReplicas(t *testing.T) {
	c, held, _ := failedStoreCluster(t)
	readAllBody(ctxT(t, 30*time.Second), t, c.nodes["n3"], storage.HashBytes(held), held)
}

// TestFailedBodyStoreNotReady: a node whose body store failed refuses
// every delivery until it is restarted, so it says so where operators
// and load balancers look (/readyz), and refuses at MAIL already, before
// the client sends a body it cannot keep.
func TestFailedBodyStoreNotReady(t *testing.T) {
	c, _, _ := failedStoreCluster(t)
	n3 := c.nodes["n3"]
	ctx := ctxT(t, 30*time.Second)
	r := n3.readiness(ctx)
	if r.err == nil || !errors.Is(r.err, storage.ErrFailed) {
		t.Fatalf("readiness of a node with a failed body store: %v, want not ready (storage.ErrFailed)", r.err)
	}
	if err := n3.CheckSpace(100); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("CheckSpace on a node whose body store failed on a full disk: %v", err)
	}
	if r := c.nodes["n1"].readiness(ctx); r.err != nil {
		t.Fatalf("n1 not ready: %v", r.err)
	}
}

// TestBodyStoreMetrics: the free space of each node's body store, its
// reserve, and whether the store failed are metrics an operator can
// alert on.
func TestBodyStoreMetrics(t *testing.T) {
	c, _, _ := failedStoreCluster(t)
	for id, wantFailed := range map[string]float64{"n1": 0, "n3": 1} {
		got := gaugeValues(t, c.nodes[id])
		if got["powermail_body_store_failed"] != wantFailed {
			t.Errorf("%s: powermail_body_store_failed = %v, want %v", id, got["powermail_body_store_failed"], wantFailed)
		}
		if got["powermail_body_store_free_bytes"] <= 0 || got["powermail_body_store_size_bytes"] < got["powermail_body_store_free_bytes"] {
			t.Errorf("%s: free %v of %v bytes", id, got["powermail_body_store_free_bytes"], got["powermail_body_store_size_bytes"])
		}
		if got["powermail_body_store_reserve_bytes"] != storage.DefaultMinFreeBytes {
			t.Errorf("%s: reserve %v, want %v", id, got["powermail_body_store_reserve_bytes"], storage.DefaultMinFreeBytes)
		}
	}
}

// gaugeValues gathers n's gauges by name.
func gaugeValues(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	mfs, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if g := m.GetGauge(); g != nil {
				got[mf.GetName()] = g.GetValue()
			}
		}
	}
	return got
}

// fixedSpaceFS reports avail bytes free on the body store's filesystem;
// everything else is the real disk.
type fixedSpaceFS struct {
	vfs.FS
	avail uint64
}

func (f *fixedSpaceFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	du.AvailBytes = f.avail
	return du, err
}

// TestRestoreSpoolKeepsTheReserve: a restore spools a large message in
// the data directory, beside the body store, and then stores it: for a
// while it takes twice its size. With room for the message once but not
// twice above the reserve, the spool would eat into the reserve that
// the raft log and the body store's flushes live on (and with less room,
// fill the disk and fail them); the restore is refused as insufficient
// storage before the message is spooled.
func TestRestoreSpoolKeepsTheReserve(t *testing.T) {
	const reserve, size = 64 << 20, 256 << 10
	n := restoreClusterWith(t, func(cfg *Config) {
		cfg.RestoreMemoryBytes = 4 << 10
		cfg.MinFreeBytes = reserve
		cfg.BodyFS = &fixedSpaceFS{FS: vfs.Default, avail: reserve + size*3/2}
	})
	big := "Subject: big\r\n\r\n" + strings.Repeat("x", size-18) + "\r\n"
	tar := buildTar(t, tarEntry{name: "Maildir/cur/1700000000.M1.h:2,S", content: big})
	_, err := n.RestoreMailbox(ctxT(t, 30*time.Second), "a@example.com", tar, 0)
	if !errors.Is(err, ErrInsufficientStorage) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("restore of a message with room for one copy above the reserve, not two: %v", err)
	}
	code, out := restoreOver(t, n, "", buildTar(t, tarEntry{name: "Maildir/cur/1700000000.M1.h:2,S", content: big}))
	if code != 503 {
		t.Fatalf("restore over the admin API: %d %s, want 503", code, out)
	}
}

// TestFullNodeServesLargeBodiesInternally: the node's own readers of
// bodies (the outbound queue forwarding a message, DSNs quoting one,
// DKIM, the admin API's raw message) read them like IMAP does, so on a
// full node they too get a large body held elsewhere, instead of failing
// to copy it into the store (the queue would retry it until it bounced).
func TestFullNodeServesLargeBodiesInternally(t *testing.T) {
	_, full, _, body := fullNodeWithLargeBody(t)
	code, out := adminDo(t, full, "GET", "/v1/mailboxes/a@example.com/messages/1/raw", string(testSecret), "")
	if code != 200 || out != string(body) {
		t.Fatalf("raw message from the full node: %d, %d bytes (want 200, %d)", code, len(out), len(body))
	}
	if _, _, err := full.countHops(ctxT(t, 10*time.Second), storage.HashBytes(body).String()); err != nil {
		t.Fatalf("the queue's read of the body on the full node: %v", err)
	}
}
