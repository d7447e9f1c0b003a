package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func TestAbortDropsChunks(t *testing.T) {
	s, _ := newStore(t, testOptions())
	w := s.NewWriter(context.Background())
	w.Write(payload(5000, 1))
	if w.spilled != 4 || countKeys(t, s, tagChunk) != 4 || countKeys(t, s, tagPending) != 1 {
		t.Fatalf("before Abort: spilled %d, %d chunks, %d pending", w.spilled, countKeys(t, s, tagChunk), countKeys(t, s, tagPending))
	}
	w.Abort()
	if c, p := countKeys(t, s, tagChunk), countKeys(t, s, tagPending); c != 0 || p != 0 {
		t.Fatalf("after Abort: %d chunks, %d pending", c, p)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrWriterDone) {
		t.Fatalf("Write after Abort: %v", err)
	}
}

// A write interrupted by a crash (here: the store closed under a Writer
// that never finished) is dropped by the next Open.
func TestOpenDropsInterruptedWrites(t *testing.T) {
	s, dir := newStore(t, testOptions())
	ctx := context.Background()
	kept := mustPut(t, s, payload(2500, 1))
	for i := range 3 {
		w := s.NewWriter(ctx)
		if _, err := w.Write(payload(4000+i, uint64(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	if p := countKeys(t, s, tagPending); p != 3 {
		t.Fatalf("%d pending markers, want 3", p)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, testOptions())
	defer s2.Close()
	if p, c := countKeys(t, s2, tagPending), countKeys(t, s2, tagChunk); p != 0 || c != 3 {
		t.Fatalf("after reopen: %d pending, %d chunks; want 0, 3 (the committed body)", p, c)
	}
	if err := s2.Verify(ctx, kept); err != nil {
		t.Fatal(err)
	}
	if st, _ := s2.Stats(ctx); st.Bodies != 1 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestCleanupStale(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()

	// A live Writer is never cleaned up, however old.
	live := s.NewWriter(ctx)
	data := payload(5000, 1)
	live.Write(data)

	// Leftovers with no live Writer: one old, one recent.
	plant := func(id uint64, started time.Time) {
		b := s.db.NewBatch()
		defer b.Close()
		b.Set(pendingKey(id), encodeTime(started), nil)
		putChunk(b, id, 0, []byte("orphan"))
		putChunk(b, id, 1, []byte("orphan"))
		if err := b.Commit(pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	oldID, _ := s.allocID()
	newID, _ := s.allocID()
	plant(oldID, time.Now().Add(-2*time.Hour))
	plant(newID, time.Now())

	n, err := s.CleanupStale(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("CleanupStale(1h) = %d, %v; want 1", n, err)
	}
	if _, ok, _ := s.get(chunkKey(oldID, 1)); ok {
		t.Fatal("old orphan chunk survived")
	}
	if _, ok, _ := s.get(chunkKey(newID, 0)); !ok {
		t.Fatal("recent orphan dropped")
	}
	n, err = s.CleanupStale(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("CleanupStale(0) = %d, %v; want 1 (recent orphan, not the live writer)", n, err)
	}
	if p, c := countKeys(t, s, tagPending), countKeys(t, s, tagChunk); p != 1 || c != 4 {
		t.Fatalf("%d pending, %d chunks; want the live writer's 1 and 4", p, c)
	}
	h, _, err := live.Commit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, h); err != nil {
		t.Fatalf("live writer's body damaged by cleanup: %v", err)
	}
	if p := countKeys(t, s, tagPending); p != 0 {
		t.Fatalf("%d pending after commit", p)
	}
	if n, err := s.CleanupStale(ctx, 0); n != 0 || err != nil {
		t.Fatalf("CleanupStale after commit = %d, %v", n, err)
	}
	if err := s.Verify(ctx, h); err != nil {
		t.Fatalf("committed body damaged by cleanup: %v", err)
	}
}

func TestPendingMarkerTime(t *testing.T) {
	s, _ := newStore(t, testOptions())
	before := time.Now()
	w := s.NewWriter(context.Background())
	defer w.Abort()
	w.Write(payload(2000, 1))
	v, ok, err := s.get(pendingKey(w.id))
	if err != nil || !ok || len(v) != 8 {
		t.Fatalf("pending marker: %x %v %v", v, ok, err)
	}
	if started := time.Unix(0, int64(binary.BigEndian.Uint64(v))); started.Before(before.Add(-time.Second)) || started.After(time.Now()) {
		t.Fatalf("marker time %v", started)
	}
}
