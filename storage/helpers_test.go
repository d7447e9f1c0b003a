package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// testOptions uses small chunks so that boundary cases are cheap.
func testOptions() Options {
	return Options{ChunkSize: 1024, Logger: slog.New(slog.DiscardHandler)}
}

func openStore(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// newStore opens a store in a fresh directory and closes it at cleanup
// unless the test closed it.
func newStore(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir, opts)
	t.Cleanup(func() { _ = s.Close() })
	return s, dir
}

// payload returns n deterministic pseudo-random bytes.
func payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}

func mustPut(t testing.TB, s *Store, data []byte) Hash {
	t.Helper()
	h, n, err := s.Put(context.Background(), bytes.NewReader(data), nil)
	if err != nil {
		t.Fatalf("Put(%d bytes): %v", len(data), err)
	}
	if h != HashBytes(data) || n != int64(len(data)) {
		t.Fatalf("Put returned %s/%d, want %s/%d", h, n, HashBytes(data), len(data))
	}
	return h
}

func readBody(s *Store, h Hash) ([]byte, error) {
	r, err := s.Reader(context.Background(), h)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// countKeys counts raw Pebble keys with the given tag.
func countKeys(t testing.TB, s *Store, tag byte) int {
	t.Helper()
	lo, hi := tagSpan(tag)
	return countSpan(t, s, lo, hi)
}

// countSpan counts raw Pebble keys in [lo, hi).
func countSpan(t testing.TB, s *Store, lo, hi []byte) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return n
}

// rawManifest reads h's manifest straight from Pebble.
func rawManifest(t testing.TB, s *Store, h Hash) manifest {
	t.Helper()
	v, ok, err := s.get(manifestKey(h))
	if err != nil || !ok {
		t.Fatalf("manifest of %s: ok=%v err=%v", h, ok, err)
	}
	m, err := decodeManifest(h, v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// rawUpdate rewrites key's value through fn, bypassing the store's checks.
func rawUpdate(t testing.TB, s *Store, key []byte, fn func(v []byte) []byte) {
	t.Helper()
	v, ok, err := s.get(key)
	if err != nil || !ok {
		t.Fatalf("raw get %x: ok=%v err=%v", key, ok, err)
	}
	if err := s.db.Set(key, fn(v), pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func wantErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want one wrapping %v", err, target)
	}
}
