package storage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// flipOnDisk flips one byte of the first occurrence of needle in the
// store's files matching pattern (a bad sector under Pebble's own block
// checksums, not a value rewritten through Pebble as Damage does). It
// reports the file it changed.
func flipOnDisk(t *testing.T, dir, pattern string, needle []byte) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(raw, needle); i >= 0 {
			raw[i+len(needle)/2] ^= 0x01
			if err := os.WriteFile(f, raw, 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("%d bytes not found in %s", len(needle), pattern)
	return ""
}

// storeOnDisk writes n bodies of size bytes, flushes them to table and
// blob files and closes the store, returning the bodies.
func storeOnDisk(t *testing.T, dir string, n, size int) [][]byte {
	t.Helper()
	s := openStore(t, dir, testOptions())
	var bodies [][]byte
	for i := range n {
		data := payload(size, uint64(i+1))
		mustPut(t, s, data)
		bodies = append(bodies, data)
	}
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return bodies
}

// A table block damaged on disk (here the one holding a body's manifest)
// fails Pebble's block checksum, and Pebble's default reaction is
// Logger.Fatalf. Ours panics to fail the store, and on a read path
// nothing recovers it: the reading goroutine (an IMAP FETCH, the scrub,
// the presence filter's rebuild at every Open) took the whole process
// down, so one bad sector kept a node from starting at all. A damaged
// block must instead be an error for the reads that need it, the store
// staying up for everything else.
func TestTableBlockDamagedOnDiskDoesNotCrash(t *testing.T) {
	ctx := context.Background()
	s, bodies, h := withDamagedManifestBlock(t)
	s.rebuildPresence() // what Open starts in the background: it reads every manifest
	if _, _, err := s.Has(ctx, h); err == nil {
		t.Fatal("Has of a body whose manifest block is damaged: no error")
	}
	if _, err := s.Reader(ctx, h); err == nil {
		t.Fatal("Reader of a body whose manifest block is damaged: no error")
	}
	if err := s.Verify(ctx, h); err == nil {
		t.Fatal("Verify of a body whose manifest block is damaged: no error")
	}
	if fe := s.failed.Load(); fe != nil {
		t.Fatalf("store failed by a read of a damaged block: %v", fe)
	}
	// Bodies whose manifests are in other blocks are unaffected.
	good := 0
	for _, data := range bodies {
		if s.Verify(ctx, HashBytes(data)) == nil {
			good++
		}
	}
	if good < len(bodies)/2 {
		t.Fatalf("only %d of %d bodies readable around one damaged block", good, len(bodies))
	}
}

// A manifest that Pebble cannot read (its table block fails the block
// checksum) is a damaged copy like any other: every read reports
// ErrCorrupt naming the body, so a node falls back to a replica, and the
// scrub and the listing audit report it (the node is unlisted and the
// body repaired elsewhere). As a plain error it failed the read with no
// fallback and stopped the scrub and the audit.
func TestManifestDamagedOnDiskIsErrCorrupt(t *testing.T) {
	ctx := context.Background()
	s, bodies, h := withDamagedManifestBlock(t)
	_, _, err := s.Has(ctx, h)
	wantCorrupt(t, err, h, "manifest")
	_, err = s.Reader(ctx, h)
	wantCorrupt(t, err, h, "manifest")
	wantCorrupt(t, s.Verify(ctx, h), h, "manifest")

	// A rewrite cannot help: iterators still merge the damaged block, so
	// a new copy would be unreadable too. It must not be acknowledged.
	if _, _, err := s.Put(ctx, bytes.NewReader(bodies[150]), &h); err == nil {
		if err := s.Verify(ctx, h); err != nil {
			t.Fatalf("rewrite acknowledged, yet the copy does not verify: %v", err)
		}
	}

	// Nor can a delete: a tombstone does not hide the damaged block from
	// reads. DeleteIfCorrupt says so, as corruption of that body.
	deleted, err := s.DeleteIfCorrupt(ctx, h)
	if deleted {
		t.Fatal("DeleteIfCorrupt reported deleting a copy that stays unreadable")
	}
	wantCorrupt(t, err, h, "manifest")
	if st, _ := s.Stats(ctx); st.Bodies != int64(len(bodies)) {
		t.Fatalf("Stats.Bodies = %d, want %d", st.Bodies, len(bodies))
	}
}

// withDamagedManifestBlock opens a store of 300 bodies whose table file
// has a flipped byte in the block holding body 150's manifest, and
// returns it (closed at the test's end), the bodies and that body's hash.
func withDamagedManifestBlock(t *testing.T) (*Store, [][]byte, Hash) {
	t.Helper()
	dir := t.TempDir()
	bodies := storeOnDisk(t, dir, 300, 1500)
	h := HashBytes(bodies[150])
	flipOnDisk(t, dir, "*.sst", h[4:])
	s := openStore(t, dir, testOptions())
	t.Cleanup(func() { s.Close() })
	return s, bodies, h
}
