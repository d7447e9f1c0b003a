package storage

import (
	"bytes"
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// breakManifest makes h's manifest fail its checksum.
func breakManifest(t *testing.T, s *Store, h Hash) {
	t.Helper()
	rawUpdate(t, s, manifestKey(h), func(v []byte) []byte { v[2] ^= 1; return v })
}

func chunkCount(t *testing.T, s *Store, id uint64) int {
	t.Helper()
	n := 0
	for idx := range uint32(16) {
		if _, ok, err := s.get(chunkKey(id, idx)); err != nil {
			t.Fatal(err)
		} else if ok {
			n++
		}
	}
	return n
}

func wantStats(t *testing.T, s *Store, bodies, bodyBytes int64) {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Bodies != bodies || st.BodyBytes != bodyBytes {
		t.Fatalf("Stats: %d bodies, %d bytes; want %d, %d", st.Bodies, st.BodyBytes, bodies, bodyBytes)
	}
}

// A body deleted while its manifest does not decode leaves its chunks and
// its size in the counters; the reclaim deletes those chunks only, and
// puts the counters right, also across a restart.
func TestReclaimLostChunksAfterCorruptDelete(t *testing.T) {
	s, dir := newStore(t, testOptions())
	ctx := context.Background()
	lost := mustPut(t, s, payload(3000, 1))
	lostID := rawManifest(t, s, lost).id
	keep := payload(5000, 2)
	kept := mustPut(t, s, keep)
	small := mustPut(t, s, payload(10, 3))

	// A live writer's spilled chunks are owned by its pending marker.
	w := s.NewWriter(ctx)
	defer w.Abort()
	if _, err := w.Write(payload(4000, 4)); err != nil {
		t.Fatal(err)
	}

	if got, err := s.ReclaimLostChunks(ctx); err != nil || got != (Reclaimed{}) {
		t.Fatalf("nothing lost yet: %+v, %v", got, err)
	}
	breakManifest(t, s, lost)
	if err := s.Delete(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if n := chunkCount(t, s, lostID); n != 3 {
		t.Fatalf("%d chunks of the deleted body before the reclaim, want 3", n)
	}
	wantStats(t, s, 2, 3000+5000+10) // the lost size is still counted

	got, err := s.ReclaimLostChunks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != (Reclaimed{Writes: 1, Chunks: 3, Bytes: 3000}) {
		t.Fatalf("reclaimed %+v, want 1 write, 3 chunks, 3000 bytes", got)
	}
	if n := chunkCount(t, s, lostID); n != 0 {
		t.Fatalf("%d chunks of the deleted body left", n)
	}
	wantStats(t, s, 2, 5000+10)
	if b, err := readBody(s, kept); err != nil || !bytes.Equal(b, keep) {
		t.Fatalf("kept body: %v", err)
	}
	if err := s.Verify(ctx, small); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Commit(ctx, nil); err != nil {
		t.Fatalf("the live writer's commit after the reclaim: %v", err)
	}
	if got, err := s.ReclaimLostChunks(ctx); err != nil || got != (Reclaimed{}) {
		t.Fatalf("second reclaim: %+v, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, testOptions())
	defer s.Close()
	wantStats(t, s, 3, 5000+10+4000)
}

// A damaged copy replaced over a manifest that does not decode leaves
// the old chunks; the body was counted once, and stays so.
func TestReclaimLostChunksAfterReplace(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	data := payload(2500, 5)
	h := mustPut(t, s, data)
	oldID := rawManifest(t, s, h).id
	breakManifest(t, s, h)
	mustPut(t, s, data) // the repair's copy
	if n := chunkCount(t, s, oldID); n != 3 {
		t.Fatalf("%d old chunks before the reclaim, want 3", n)
	}
	got, err := s.ReclaimLostChunks(ctx)
	if err != nil || got.Writes != 1 || got.Chunks != 3 {
		t.Fatalf("reclaimed %+v, %v; want the 3 old chunks", got, err)
	}
	if n := chunkCount(t, s, oldID); n != 0 {
		t.Fatalf("%d old chunks left", n)
	}
	wantStats(t, s, 1, 2500)
	if b, err := readBody(s, h); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("the new copy: %v", err)
	}
}

// While some manifest does not decode, its chunks look lost too: the
// reclaim deletes nothing and keeps the mark for after the scrub has
// deleted that body.
func TestReclaimLostChunksWaitsForUndecodableManifest(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	a := mustPut(t, s, payload(3000, 6))
	b := mustPut(t, s, payload(3000, 7))
	bID := rawManifest(t, s, b).id
	breakManifest(t, s, a)
	if err := s.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	breakManifest(t, s, b)
	if got, err := s.ReclaimLostChunks(ctx); err != nil || got != (Reclaimed{}) {
		t.Fatalf("reclaim beside an undecodable manifest: %+v, %v", got, err)
	}
	if n := chunkCount(t, s, bID); n != 3 {
		t.Fatalf("%d chunks of the body with the undecodable manifest, want 3", n)
	}
	if err := s.Delete(ctx, b); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReclaimLostChunks(ctx)
	if err != nil || got.Writes != 2 || got.Chunks != 6 {
		t.Fatalf("reclaimed %+v, %v; want both bodies' chunks", got, err)
	}
	if n := countKeys(t, s, tagChunk); n != 0 {
		t.Fatalf("%d chunk keys left", n)
	}
	wantStats(t, s, 0, 0)
}

// Lost chunks whose values cannot be read (the disk damage that broke
// their manifest may have reached them too) are reclaimed all the same:
// the reclaim needs their keys and lengths, not their bytes. Before, it
// read every lost chunk's value to count its bytes, and one unreadable
// value failed every reclaim, leaving all lost chunks for good.
func TestReclaimLostChunksWhoseValuesDoNotRead(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openStore(t, dir, testOptions())
	lostData := payload(3000, 11)
	lost := mustPut(t, s, lostData)
	kept := mustPut(t, s, payload(3000, 12))
	breakManifest(t, s, lost)
	if err := s.Delete(ctx, lost); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	flipOnDisk(t, dir, "*.blob", lostData[1100:1164]) // the lost body's second chunk
	s = openStore(t, dir, testOptions())
	defer s.Close()

	got, err := s.ReclaimLostChunks(ctx)
	if err != nil {
		t.Fatalf("reclaim beside an unreadable lost chunk: %v", err)
	}
	if got != (Reclaimed{Writes: 1, Chunks: 3, Bytes: 3000}) {
		t.Fatalf("reclaimed %+v, want 1 write, 3 chunks, 3000 bytes", got)
	}
	wantStats(t, s, 1, 3000)
	// The kept body's values may share the damaged blob block; its
	// chunks are all still there.
	lo, hi := chunkSpan(rawManifest(t, s, kept).id)
	if n := countSpan(t, s, lo, hi); n != 3 {
		t.Fatalf("%d chunk keys of the kept body, want 3", n)
	}
}

// A manifest naming the last write id does not make the reclaim seek
// past it to id 0 and round again for ever.
func TestReclaimLostChunksAtTheLastWriteID(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lost := mustPut(t, s, payload(3000, 8))
	breakManifest(t, s, lost)
	if err := s.Delete(ctx, lost); err != nil {
		t.Fatal(err)
	}
	var h Hash
	h[0] = 0xee
	m := manifest{size: 5, chunkSize: 1024, id: math.MaxUint64, written: time.Now()}
	b := s.db.NewBatch()
	if err := errors.Join(b.Set(manifestKey(h), m.encode(h), nil), putChunk(b, m.id, 0, []byte("hello"))); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	b.Close()
	got, err := s.ReclaimLostChunks(ctx)
	if err != nil || got.Writes != 1 {
		t.Fatalf("reclaimed %+v, %v; want the lost body's chunks", got, err)
	}
	if _, ok, err := s.get(chunkKey(math.MaxUint64, 0)); err != nil || !ok {
		t.Fatalf("the last id's chunk: present %v, %v", ok, err)
	}
}
