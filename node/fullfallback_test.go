package node

import (
	"bytes"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"powermail/storage"
)

// fillableFS reports the real disk's free space until full is set, and
// then none: a disk that filled while the node ran.
type fillableFS struct {
	vfs.FS
	full *atomic.Bool
}

func (f fillableFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	if f.full.Load() {
		du.AvailBytes = 0
	}
	return du, err
}

// A node at its free-space reserve that finds its own copy of a large
// body corrupt in the middle of a read went on by copying the body from
// a replica into its store, which refuses the copy for want of space:
// the read (an IMAP FETCH, a POP3 RETR, the queue) failed, though the
// replicas hold good copies and a full node streams bodies it does not
// hold. It goes on from a replica as any read around the store does,
// streamed here, at the same offset.
func TestFullNodeReadsAroundItsCorruptCopy(t *testing.T) {
	var mu sync.Mutex
	full := map[string]*atomic.Bool{}
	c := deliveryClusterWith(t, func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		full[cfg.ID] = new(atomic.Bool)
		cfg.RemoteReadMax = 4 << 10
		cfg.MinFreeBytes = 1 << 20
		cfg.BodyFS = fillableFS{FS: vfs.Default, full: full[cfg.ID]}
	})
	ctx := ctxT(t, 30*time.Second)
	body := bytes.Repeat([]byte("Subject: big\r\n\r\nlarge body line\r\n"), 10000) // ~330 KiB, several chunks
	n1 := c.nodes["n1"]
	if _, err := n1.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	h := storage.HashBytes(body)
	rec, err := n1.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	holder := c.nodes[rec.Replicas[0]]
	if err := holder.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	full[holder.ID()].Store(true)
	mu.Unlock()
	waitFor(t, 5*time.Second, "the holder at its reserve", func() bool { return holder.bodies.CheckSpace(int64(len(body))) != nil })
	if err := holder.bodies.Damage(ctx, h); err != nil {
		t.Fatal(err)
	}
	b, err := holder.OpenBody(ctx, h.String())
	if err != nil {
		t.Fatalf("open on the full holder: %v", err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read on the full holder of a corrupt copy: %d of %d bytes, %v", len(got), len(body), err)
	}
}

// A read of the local copy that is under way when the body store fails
// (another write met a full disk) got the store's failure for its next
// chunk: the FETCH or RETR was cut, though a read opened a moment later
// goes around the failed store to a replica. It goes on from a replica
// at the same offset, as a read that meets corruption does.
func TestReadUnderWayWhenTheStoreFailsGoesOn(t *testing.T) {
	tog, fs := enospcFS()
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		if cfg.ID == "n3" {
			cfg.BodyFS = fs
		}
	})
	ctx := ctxT(t, 30*time.Second)
	n3 := c.nodes["n3"]
	body := bytes.Repeat([]byte("Subject: big\r\n\r\nlarge body line\r\n"), 10000) // ~330 KiB, several chunks
	if _, err := n3.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	h := storage.HashBytes(body)
	if err := n3.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if has, _, err := n3.bodies.Has(ctx, h); err != nil || !has {
		t.Fatalf("n3 holds no copy of what it delivered: %v %v", has, err)
	}
	b, err := n3.OpenBody(ctx, h.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	head := make([]byte, 1000)
	if _, err := io.ReadFull(b, head); err != nil {
		t.Fatal(err)
	}
	tog.On()
	n3.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, bytes.NewReader([]byte("Subject: lost\r\n\r\nnowhere to go\r\n")))
	tog.Off()
	if n3.bodies.Failed() == nil {
		t.Fatal("the body store did not fail; the test injected nothing")
	}
	rest, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(append(head, rest...), body) {
		t.Fatalf("the rest of a read under way when the store failed: %d of %d bytes, %v", len(rest), len(body)-len(head), err)
	}
}
