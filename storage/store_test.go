package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// Sizes around the 1024-byte test chunk boundaries.
var boundarySizes = []int{0, 1, 63, 1023, 1024, 1025, 2047, 2048, 2049, 5*1024 + 7, 100_003}

func chunksFor(n, cs int) int { return (n + cs - 1) / cs }

func TestRoundTrip(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	wantChunks := 0
	for i, n := range boundarySizes {
		data := payload(n, uint64(i))
		h := mustPut(t, s, data)
		wantChunks += chunksFor(n, 1024)
		ok, size, err := s.Has(ctx, h)
		if err != nil || !ok || size != int64(n) {
			t.Fatalf("size %d: Has = %v, %d, %v", n, ok, size, err)
		}
		got, err := readBody(s, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: read %d bytes, err %v; equal=%v", n, len(got), err, bytes.Equal(got, data))
		}
		if err := s.Verify(ctx, h); err != nil {
			t.Fatalf("size %d: Verify: %v", n, err)
		}
		if m := rawManifest(t, s, h); int(m.chunks()) != chunksFor(n, 1024) {
			t.Fatalf("size %d: %d chunks, want %d", n, m.chunks(), chunksFor(n, 1024))
		}
	}
	if got := countKeys(t, s, tagChunk); got != wantChunks {
		t.Fatalf("%d chunk keys on disk, want %d", got, wantChunks)
	}
	if got := countKeys(t, s, tagPending); got != 0 {
		t.Fatalf("%d pending markers left after commits", got)
	}
}

func TestWriteInPieces(t *testing.T) {
	s, _ := newStore(t, testOptions())
	data := payload(10_000, 7)
	for _, piece := range []int{1, 7, 1023, 1024, 1025, 4096} {
		w := s.NewWriter(context.Background())
		for p := data; len(p) > 0; {
			k := min(piece, len(p))
			if n, err := w.Write(p[:k]); n != k || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			p = p[k:]
		}
		if w.Size() != int64(len(data)) {
			t.Fatalf("Size = %d", w.Size())
		}
		h, n, err := w.Commit(context.Background(), nil)
		if err != nil || h != HashBytes(data) || n != int64(len(data)) {
			t.Fatalf("piece %d: Commit = %s, %d, %v", piece, h, n, err)
		}
	}
	if got := countKeys(t, s, tagChunk); got != chunksFor(len(data), 1024) {
		t.Fatalf("%d chunk keys, want one copy (%d)", got, chunksFor(len(data), 1024))
	}
}

func TestReadFromOffsets(t *testing.T) {
	s, _ := newStore(t, testOptions())
	data := payload(10*1024+13, 3)
	h := mustPut(t, s, data)
	size := int64(len(data))
	for _, off := range []int64{0, 1, 1023, 1024, 1025, 5000, size - 1, size, size + 10} {
		r, err := s.Reader(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() != size || r.Hash() != h {
			t.Fatalf("Size/Hash = %d/%s", r.Size(), r.Hash())
		}
		if pos, err := r.Seek(off, io.SeekStart); err != nil || pos != off {
			t.Fatalf("Seek(%d) = %d, %v", off, pos, err)
		}
		got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(r, 3000)))
		want := data[min(off, size):]
		want = want[:min(len(want), 3000)]
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("offset %d: got %d bytes, err %v, equal=%v", off, len(got), err, bytes.Equal(got, want))
		}
		if pos, err := r.Seek(-2, io.SeekEnd); err != nil || pos != size-2 {
			t.Fatalf("SeekEnd = %d, %v", pos, err)
		}
		if _, err := r.Seek(-1, io.SeekStart); err == nil {
			t.Fatal("negative seek succeeded")
		}
		r.Close()
	}
	// The standard library's reader conformance test (reads, seeks).
	r, err := s.Reader(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := iotest.TestReader(r, data); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicateDedupes(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	big, small := payload(5000, 1), payload(100, 2)
	hb := mustPut(t, s, big)
	mustPut(t, s, small)
	first := rawManifest(t, s, hb).written
	mustPut(t, s, big)
	mustPut(t, s, small)

	// Concurrent duplicates of a third body.
	third := payload(3333, 3)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, _, err := s.Put(ctx, bytes.NewReader(third), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	wantChunks := chunksFor(5000, 1024) + 1 + chunksFor(3333, 1024)
	if got := countKeys(t, s, tagChunk); got != wantChunks {
		t.Fatalf("%d chunk keys, want %d (one copy each)", got, wantChunks)
	}
	if got := countKeys(t, s, tagPending); got != 0 {
		t.Fatalf("%d pending markers left", got)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bodies != 3 || st.BodyBytes != 5000+100+3333 {
		t.Fatalf("Stats = %+v, want 3 bodies of %d bytes", st, 5000+100+3333)
	}
	if got := rawManifest(t, s, hb).written; !got.Equal(first) {
		t.Fatalf("duplicate changed write time %v -> %v", first, got)
	}
}

func TestDeleteAndHas(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	a, b := payload(4000, 1), payload(10, 2)
	ha, hb := mustPut(t, s, a), mustPut(t, s, b)
	if err := s.Delete(ctx, ha); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Has(ctx, ha); ok || err != nil {
		t.Fatalf("Has after Delete = %v, %v", ok, err)
	}
	_, err := s.Reader(ctx, ha)
	wantErrIs(t, err, ErrNotFound)
	wantErrIs(t, s.Verify(ctx, ha), ErrNotFound)
	if got := countKeys(t, s, tagChunk); got != 1 {
		t.Fatalf("%d chunk keys after Delete, want 1 (body b)", got)
	}
	for _, h := range []Hash{ha, HashBytes([]byte("never stored"))} {
		if err := s.Delete(ctx, h); err != nil {
			t.Fatalf("Delete of absent body: %v", err)
		}
	}
	if got, err := readBody(s, hb); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("other body damaged: %v", err)
	}
	st, _ := s.Stats(ctx)
	if st.Bodies != 1 || st.BodyBytes != 10 {
		t.Fatalf("Stats after Delete = %+v", st)
	}
	// A deleted body can be written again.
	mustPut(t, s, a)
	if err := s.Verify(ctx, ha); err != nil {
		t.Fatal(err)
	}
}

func TestReaderSeesSnapshotAcrossDelete(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	data := payload(8000, 4)
	h := mustPut(t, s, data)
	r, err := s.Reader(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	head := make([]byte, 100)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("read across Delete: err %v", err)
	}
}

func TestBodiesIterator(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	before := time.Now()
	want := map[Hash]int64{}
	for i := range 300 { // more than one page
		data := payload(i*7, uint64(i))
		want[mustPut(t, s, data)] = int64(len(data))
	}
	after := time.Now()
	var got []Hash
	for bi, err := range s.Bodies(ctx, Hash{}) {
		if err != nil {
			t.Fatal(err)
		}
		if want[bi.Hash] != bi.Size {
			t.Fatalf("%s: size %d, want %d", bi.Hash, bi.Size, want[bi.Hash])
		}
		if bi.Written.Before(before) || bi.Written.After(after) {
			t.Fatalf("%s: written %v outside [%v, %v]", bi.Hash, bi.Written, before, after)
		}
		got = append(got, bi.Hash)
	}
	sorted := slices.IsSortedFunc(got, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	if len(got) != len(want) || !sorted {
		t.Fatalf("iterated %d bodies (sorted=%v), want %d", len(got), sorted, len(want))
	}
	// Resume from the middle.
	mid := got[150]
	n := 0
	for bi, err := range s.Bodies(ctx, mid) {
		if err != nil || (n == 0 && bi.Hash != mid) {
			t.Fatalf("resume: %s, %v", bi.Hash, err)
		}
		n++
	}
	if n != 150 {
		t.Fatalf("resume yielded %d, want 150", n)
	}
	// The loop body may modify the store (GC pattern) without deadlock.
	deleted := 0
	for bi, err := range s.Bodies(ctx, Hash{}) {
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, bi.Hash); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	st, _ := s.Stats(ctx)
	if deleted != 300 || st.Bodies != 0 || st.BodyBytes != 0 || countKeys(t, s, tagChunk) != 0 {
		t.Fatalf("after deleting all: deleted %d, stats %+v, chunks %d", deleted, st, countKeys(t, s, tagChunk))
	}
}

func TestStats(t *testing.T) {
	s, dir := newStore(t, testOptions())
	ctx := context.Background()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bodies != 0 || st.BodyBytes != 0 {
		t.Fatalf("empty store Stats = %+v", st)
	}
	if st.FSTotal == 0 || st.FSAvail == 0 || st.FSAvail > st.FSTotal || st.DiskBytes == 0 {
		t.Fatalf("filesystem stats implausible: %+v", st)
	}
	for i, n := range []int{0, 10, 5000} {
		mustPut(t, s, payload(n, uint64(i)))
	}
	st, _ = s.Stats(ctx)
	if st.Bodies != 3 || st.BodyBytes != 5010 {
		t.Fatalf("Stats = %+v, want 3 bodies, 5010 bytes", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, dir, testOptions())
	st2, _ := s2.Stats(ctx)
	if st2.Bodies != 3 || st2.BodyBytes != 5010 {
		t.Fatalf("Stats after reopen = %+v", st2)
	}
	// Unreadable counters are rebuilt from the manifests.
	if err := s2.db.Set(keyCounters, []byte("junk"), nil); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s3 := openStore(t, dir, testOptions())
	defer s3.Close()
	if st3, _ := s3.Stats(ctx); st3.Bodies != 3 || st3.BodyBytes != 5010 {
		t.Fatalf("Stats after recount = %+v", st3)
	}
}

func TestWrongHashRefused(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	for _, n := range []int{10, 5000} {
		data := payload(n, 9)
		wrong := HashBytes([]byte("something else"))
		_, _, err := s.Put(ctx, bytes.NewReader(data), &wrong)
		wantErrIs(t, err, ErrHashMismatch)
		if ok, _, err := s.Has(ctx, HashBytes(data)); ok || err != nil {
			t.Fatalf("Has after mismatch = %v, %v", ok, err)
		}
		if ok, _, _ := s.Has(ctx, wrong); ok {
			t.Fatal("body stored under the wanted hash")
		}
	}
	if c, p := countKeys(t, s, tagChunk), countKeys(t, s, tagPending); c != 0 || p != 0 {
		t.Fatalf("left %d chunks, %d pending markers", c, p)
	}
	if st, _ := s.Stats(ctx); st.Bodies != 0 {
		t.Fatalf("Stats = %+v", st)
	}
	// The right expected hash is accepted (replica write).
	data := payload(5000, 9)
	want := HashBytes(data)
	if h, _, err := s.Put(ctx, bytes.NewReader(data), &want); err != nil || h != want {
		t.Fatalf("Put with right hash = %s, %v", h, err)
	}
}

func TestWriterLifecycle(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	w := s.NewWriter(ctx)
	w.Write(payload(3000, 1))
	h, _, err := w.Commit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Abort() // no-op after Commit
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrWriterDone) {
		t.Fatalf("Write after Commit: %v", err)
	}
	if _, _, err := w.Commit(ctx, nil); !errors.Is(err, ErrWriterDone) {
		t.Fatalf("second Commit: %v", err)
	}
	if err := s.Verify(ctx, h); err != nil {
		t.Fatalf("Abort after Commit damaged the body: %v", err)
	}

	// A cancelled context refuses the commit and keeps nothing.
	w = s.NewWriter(ctx)
	data := payload(3000, 2)
	w.Write(data)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _, err = w.Commit(cctx, nil)
	wantErrIs(t, err, context.Canceled)
	if ok, _, _ := s.Has(ctx, HashBytes(data)); ok || countKeys(t, s, tagPending) != 0 {
		t.Fatal("cancelled commit kept data")
	}
	if got := countKeys(t, s, tagChunk); got != 3 {
		t.Fatalf("%d chunk keys, want 3 (first body only)", got)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	h := mustPut(t, s, payload(5000, 1))
	r, err := s.Reader(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	w := s.NewWriter(ctx)
	if err := s.Close(); err != nil {
		t.Fatalf("Close with an open Reader: %v", err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	r.Close()
	if _, err := w.Write(payload(3000, 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if _, _, err := s.Has(ctx, h); !errors.Is(err, ErrClosed) {
		t.Fatalf("Has after Close: %v", err)
	}
	wantErrIs(t, s.Close(), ErrClosed)
}

func TestOpenChecks(t *testing.T) {
	opts := testOptions()
	opts.ChunkSize = 10
	_, err := Open(context.Background(), t.TempDir(), opts)
	wantErrIs(t, err, ErrInvalidOptions)

	s, dir := newStore(t, testOptions())
	if err := s.db.Set(keyFormat, []byte("powermail-storage/v999"), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(context.Background(), dir, testOptions())
	wantErrIs(t, err, ErrFormat)
}

func TestChunkSizeChangeKeepsOldBodies(t *testing.T) {
	s, dir := newStore(t, testOptions())
	data := payload(5000, 5)
	h := mustPut(t, s, data)
	s.Close()
	opts := testOptions()
	opts.ChunkSize = 4096
	s2 := openStore(t, dir, opts)
	defer s2.Close()
	if got, err := readBody(s2, h); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with new chunk size: %v", err)
	}
	h2 := mustPut(t, s2, payload(5000, 6))
	if m := rawManifest(t, s2, h2); m.chunkSize != 4096 || m.chunks() != 2 {
		t.Fatalf("new body manifest %+v", m)
	}
}

func TestWriteIDsNeverReused(t *testing.T) {
	s, dir := newStore(t, testOptions())
	h := mustPut(t, s, payload(10, 1))
	first := rawManifest(t, s, h).id
	s.Close()
	s2 := openStore(t, dir, testOptions())
	defer s2.Close()
	h2 := mustPut(t, s2, payload(10, 2))
	if second := rawManifest(t, s2, h2).id; second <= first {
		t.Fatalf("write id %d after reopen, not above %d", second, first)
	}
}
