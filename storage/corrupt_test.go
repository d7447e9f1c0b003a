package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// wantCorrupt checks that err wraps ErrCorrupt and names the body and, if
// non-empty, what.
func wantCorrupt(t *testing.T, err error, h Hash, what string) {
	t.Helper()
	wantErrIs(t, err, ErrCorrupt)
	if !strings.Contains(err.Error(), h.String()) || !strings.Contains(err.Error(), what) {
		t.Fatalf("error %q does not name body %s and %q", err, h, what)
	}
}

// flipChunkByte flips one data byte of chunk idx of h, leaving its CRC.
func flipChunkByte(t *testing.T, s *Store, h Hash, idx uint32) {
	m := rawManifest(t, s, h)
	rawUpdate(t, s, chunkKey(m.id, idx), func(v []byte) []byte {
		v[chunkHeaderLen+10] ^= 0x40
		return v
	})
}

func TestCorruptChunkDetected(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	data := payload(3*1024+100, 1)
	h := mustPut(t, s, data)
	flipChunkByte(t, s, h, 1)

	r, err := s.Reader(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	wantCorrupt(t, err, h, "chunk 1")
	// Only chunk 0 (verified) may have been returned, and it is intact.
	if len(got) > 1024 || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("reader returned %d bytes before the error, or bad ones", len(got))
	}
	// The error is sticky.
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("second Read: %v", err)
	}
	r.Close()
	wantCorrupt(t, s.Verify(ctx, h), h, "chunk 1")

	// Reading from an offset inside the bad chunk fails too; after it is fine.
	r2, _ := s.Reader(ctx, h)
	defer r2.Close()
	r2.Seek(1500, io.SeekStart)
	_, err = r2.Read(make([]byte, 10))
	wantCorrupt(t, err, h, "chunk 1")
	r3, _ := s.Reader(ctx, h)
	defer r3.Close()
	r3.Seek(2048, io.SeekStart)
	if tail, err := io.ReadAll(r3); err != nil || !bytes.Equal(tail, data[2048:]) {
		t.Fatalf("read past the bad chunk: %v", err)
	}
}

func TestCorruptSingleChunkBodyReturnsNoBytes(t *testing.T) {
	s, _ := newStore(t, testOptions())
	h := mustPut(t, s, payload(500, 2))
	flipChunkByte(t, s, h, 0)
	got, err := readBody(s, h)
	wantCorrupt(t, err, h, "chunk 0")
	if len(got) != 0 {
		t.Fatalf("returned %d bytes of a corrupt body", len(got))
	}
}

// A chunk replaced by other data with a valid CRC (e.g. a bug writing the
// wrong bytes) is caught by the whole-body SHA-256.
func TestWrongButChecksummedChunkCaughtByHash(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	for _, n := range []int{500, 3000} {
		data := payload(n, uint64(n))
		h := mustPut(t, s, data)
		m := rawManifest(t, s, h)
		key := chunkKey(m.id, 0)
		rawUpdate(t, s, key, func(v []byte) []byte {
			v[chunkHeaderLen] ^= 1
			binary.BigEndian.PutUint32(v, chunkCRC(key, v[chunkHeaderLen:]))
			return v
		})
		got, err := readBody(s, h)
		wantCorrupt(t, err, h, "content hash")
		if n <= 1024 && len(got) != 0 {
			t.Fatalf("one-chunk body: returned %d bytes before the hash check", len(got))
		}
		wantCorrupt(t, s.Verify(ctx, h), h, "content hash")
	}
}

func TestMissingAndStrayChunks(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	h := mustPut(t, s, payload(3000, 3))
	m := rawManifest(t, s, h)
	if err := s.db.Delete(chunkKey(m.id, 2), nil); err != nil {
		t.Fatal(err)
	}
	wantCorrupt(t, s.Verify(ctx, h), h, "chunk 2: missing")

	h2 := mustPut(t, s, payload(3000, 4))
	m2 := rawManifest(t, s, h2)
	b := s.db.NewBatch()
	putChunk(b, m2.id, 3, []byte("extra"))
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	wantCorrupt(t, s.Verify(ctx, h2), h2, "stray chunk")
}

func TestCorruptManifest(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	h := mustPut(t, s, payload(3000, 5))
	good := mustPut(t, s, payload(10, 6))
	rawUpdate(t, s, manifestKey(h), func(v []byte) []byte { v[2] ^= 1; return v })

	_, _, err := s.Has(ctx, h)
	wantCorrupt(t, err, h, "manifest")
	_, err = s.Reader(ctx, h)
	wantCorrupt(t, err, h, "manifest")
	wantCorrupt(t, s.Verify(ctx, h), h, "manifest")
	var sawBad, sawGood bool
	for bi, err := range s.Bodies(ctx, Hash{}) {
		switch {
		case err != nil:
			wantCorrupt(t, err, h, "manifest")
			sawBad = bi.Hash == h
		case bi.Hash == good:
			sawGood = true
		}
	}
	if !sawBad || !sawGood {
		t.Fatalf("Bodies: saw corrupt entry %v, good entry %v", sawBad, sawGood)
	}
	// Delete still removes it, so that the body can be fetched again.
	if err := s.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Has(ctx, h); ok || err != nil {
		t.Fatalf("Has after Delete = %v, %v", ok, err)
	}
}

// Writing a body again over a damaged copy repairs it.
func TestRewriteRepairsDamagedBody(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	data := payload(5000, 7)
	h := mustPut(t, s, data)
	flipChunkByte(t, s, h, 3)
	wantCorrupt(t, s.Verify(ctx, h), h, "chunk 3")
	mustPut(t, s, data)
	if err := s.Verify(ctx, h); err != nil {
		t.Fatalf("after rewrite: %v", err)
	}
	if got := countKeys(t, s, tagChunk); got != chunksFor(5000, 1024) {
		t.Fatalf("%d chunk keys, want one copy", got)
	}
	if st, _ := s.Stats(ctx); st.Bodies != 1 || st.BodyBytes != 5000 {
		t.Fatalf("Stats = %+v", st)
	}
}

// DeleteIfCorrupt deletes a body whose chunk or manifest is damaged, and
// leaves an intact one, such as a good copy written after the verdict.
func TestDeleteIfCorrupt(t *testing.T) {
	s, _ := newStore(t, testOptions())
	ctx := context.Background()
	data := payload(3*1024+100, 2)
	h := mustPut(t, s, data)
	if deleted, err := s.DeleteIfCorrupt(ctx, h); err != nil || deleted {
		t.Fatalf("intact body: deleted %v, %v", deleted, err)
	}
	flipChunkByte(t, s, h, 1)
	if deleted, err := s.DeleteIfCorrupt(ctx, h); err != nil || !deleted {
		t.Fatalf("damaged chunk: deleted %v, %v", deleted, err)
	}
	// A good copy written again after the verdict stays.
	mustPut(t, s, data)
	if deleted, err := s.DeleteIfCorrupt(ctx, h); err != nil || deleted {
		t.Fatalf("rewritten body: deleted %v, %v", deleted, err)
	}
	rawUpdate(t, s, manifestKey(h), func(v []byte) []byte {
		v[5] ^= 0x01
		return v
	})
	if deleted, err := s.DeleteIfCorrupt(ctx, h); err != nil || !deleted {
		t.Fatalf("damaged manifest: deleted %v, %v", deleted, err)
	}
	if has, _, err := s.Has(ctx, h); has || err != nil {
		t.Fatalf("after the delete: has %v, %v", has, err)
	}
	if deleted, err := s.DeleteIfCorrupt(ctx, h); err != nil || deleted {
		t.Fatalf("absent body: deleted %v, %v", deleted, err)
	}
}
