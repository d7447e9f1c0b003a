package storage

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// usageFS reports a free-space figure the test sets; everything else is
// the real filesystem.
type usageFS struct {
	vfs.FS
	avail atomic.Uint64
}

func (f *usageFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	du.AvailBytes = f.avail.Load()
	return du, err
}

// TestReserveRefusesNewBodies: a write that would cut into the free-space
// reserve fails with ErrNoSpace before anything is written, the store
// stays usable (reads, duplicates of one-chunk bodies), and writes resume as soon as
// space is freed, without waiting for the next scheduled reading.
func TestReserveRefusesNewBodies(t *testing.T) {
	ctx := context.Background()
	fs := &usageFS{FS: vfs.Default}
	fs.avail.Store(10 << 20)
	opts := testOptions()
	opts.FS, opts.MinFreeBytes = fs, 8<<20
	s, _ := newStore(t, opts)
	clock := time.Now()
	s.now = func() time.Time { return clock }

	kept := mustPut(t, s, payload(1<<20, 1)) // 10 MiB free, 9 after: fine
	small := payload(500, 9)
	mustPut(t, s, small)
	if st, err := s.Stats(ctx); err != nil || st.MinFree != 8<<20 || st.Room() != 2<<20 {
		t.Fatalf("stats %+v, room %d, %v", st, st.Room(), err)
	}

	fs.avail.Store(8<<20 + 100)     // something else fills the disk;
	mustPut(t, s, payload(500, 3))  // the last reading is trusted for a while,
	clock = clock.Add(spaceRecheck) // and then read again
	keys := countKeys(t, s, tagChunk) + countKeys(t, s, tagPending)
	for _, size := range []int{500, 5000} { // one chunk (Commit), several (spill)
		_, _, err := s.Put(ctx, bytes.NewReader(payload(size, 2)), nil)
		wantErrIs(t, err, ErrNoSpace)
	}
	if n := countKeys(t, s, tagChunk) + countKeys(t, s, tagPending); n != keys {
		t.Fatalf("%d chunk and pending keys after refused writes, %d before", n, keys)
	}
	if got, err := readBody(s, kept); err != nil || len(got) != 1<<20 {
		t.Fatalf("read at the reserve: %d bytes, %v", len(got), err)
	}
	mustPut(t, s, small) // a duplicate of one chunk writes nothing

	fs.avail.Store(100 << 20) // space freed: the next write reads it at once
	mustPut(t, s, payload(5000, 2))
}

// TestReserveReachedMidBody: a body whose first chunks were admitted and
// spilled before the disk filled is refused at the chunk that would cut into the reserve; it is
// not committed, and aborting it leaves no chunk and no pending marker.
func TestReserveReachedMidBody(t *testing.T) {
	ctx := context.Background()
	fs := &usageFS{FS: vfs.Default}
	opts := testOptions()
	fs.avail.Store(10 << 20)
	opts.FS, opts.MinFreeBytes = fs, 8<<20
	s, _ := newStore(t, opts)
	clock := time.Now()
	s.now = func() time.Time { return clock }
	keys := countKeys(t, s, tagChunk) + countKeys(t, s, tagPending)

	w := s.NewWriter(ctx)
	data := payload(6*opts.ChunkSize, 4)
	if _, err := w.Write(data[:3*opts.ChunkSize]); err != nil {
		t.Fatal(err)
	}
	fs.avail.Store(8<<20 + 100)     // something else fills the disk meanwhile,
	clock = clock.Add(spaceRecheck) // seen at the next reading
	_, err := w.Write(data[3*opts.ChunkSize:])
	wantErrIs(t, err, ErrNoSpace)
	if got := countKeys(t, s, tagChunk); got == 0 {
		t.Fatal("no chunk was spilled before the refusal; the test checks nothing")
	}
	if _, _, err := w.Commit(ctx, nil); err == nil {
		t.Fatal("Commit acknowledged a body refused midway")
	}
	w.Abort()
	if n := countKeys(t, s, tagChunk) + countKeys(t, s, tagPending); n != keys {
		t.Fatalf("%d chunk and pending keys after an aborted body, %d before", n, keys)
	}
	if st, err := s.Stats(ctx); err != nil || st.Bodies != 0 || st.BodyBytes != 0 {
		t.Fatalf("stats after an aborted body: %+v, %v", st, err)
	}
}
