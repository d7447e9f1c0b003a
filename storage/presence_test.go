package storage

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// waitPresence waits until no rebuild of s's presence filter runs and one
// has completed.
func waitPresence(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.pres.cur.Load() == nil || s.pres.rebuilding.Load() {
		if time.Now().After(deadline) {
			t.Fatal("presence filter not built within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The filter holds every stored body, after Open and after commits, and
// answers "absent" for most hashes never stored.
func TestPresenceFilterCoversStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, Options{})
	var stored []Hash
	for i := range 50 {
		h, _, err := s.Put(ctx, bytes.NewReader(payload(300, uint64(i))), nil)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, h)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, Options{})
	defer s.Close()
	waitPresence(t, s)
	h, _, err := s.Put(ctx, bytes.NewReader(payload(300, 1000)), nil)
	if err != nil {
		t.Fatal(err)
	}
	stored = append(stored, h)
	for _, h := range stored {
		if !s.pres.mayHave(h) {
			t.Fatalf("stored body %s missing from the presence filter", h)
		}
	}
	absent := 0
	for i := range 1000 {
		if !s.pres.mayHave(HashBytes(payload(64, uint64(5000+i)))) {
			absent++
		}
	}
	if absent < 950 {
		t.Fatalf("only %d of 1000 unknown hashes answered absent", absent)
	}
	// A body stored before the reopen is still found on a second Put:
	// stored once, counted once.
	before := s.bodies.Load()
	if _, _, err := s.Put(ctx, bytes.NewReader(payload(300, 7)), nil); err != nil {
		t.Fatal(err)
	}
	if got := s.bodies.Load(); got != before {
		t.Fatalf("bodies %d -> %d after storing a body again", before, got)
	}
}

// Commits that race rebuilds (a filter of capacity 16 is rebuilt every
// few commits) never leave a stored body out: storing every body again
// afterwards adds none.
func TestPresenceFilterRebuildsUnderCommits(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{presenceMin: 16})
	waitPresence(t, s)
	const writers, each = 8, 60
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, _, err := s.Put(ctx, bytes.NewReader(payload(200, uint64(w*each+i))), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	waitPresence(t, s)
	if got := s.bodies.Load(); got != writers*each {
		t.Fatalf("bodies = %d, want %d", got, writers*each)
	}
	if c := s.pres.cur.Load().Capacity(); c < writers*each {
		t.Fatalf("filter capacity %d after %d bodies: no rebuild", c, writers*each)
	}
	for i := range writers * each {
		h, _, err := s.Put(ctx, bytes.NewReader(payload(200, uint64(i))), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !s.pres.mayHave(h) {
			t.Fatalf("body %d missing from the filter", i)
		}
	}
	if got := s.bodies.Load(); got != writers*each {
		t.Fatalf("bodies = %d after storing each again, want %d", got, writers*each)
	}
}
