package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"powermail/storage/hashfilter"
)

// presence answers "is this body surely not stored?" without a Pebble
// read. Every new body's Commit asks whether its hash is stored already
// (single-instance storage), and nearly every answer is no; in Pebble a
// miss still walks every memtable's skiplist, which under delivery load
// cost 3-4% of a node's CPU.
//
// It is a Bloom filter (package hashfilter) over the hashes of committed
// manifests. Invariant: once built, it holds every hash whose manifest is
// in the store (it may hold more: deleted bodies stay until the next
// rebuild). Commits add
// their hash before the manifest is written; a rebuild installs its new
// filter before it scans, so a manifest is either scanned or added by its
// committer. Until the first build is done, every lookup goes to Pebble.
type presence struct {
	// mu is held shared from a commit's add until its manifest is written,
	// and exclusively while a rebuild installs its filter.
	mu         sync.RWMutex
	cur        atomic.Pointer[hashfilter.Filter] // nil until built
	next       *hashfilter.Filter                // being built; under mu
	rebuilding atomic.Bool
}

// presenceMinCapacity bounds the filter from below: 1 Mi hashes, 1.2 MiB.
const presenceMinCapacity = 1 << 20

// mayHave reports whether h may be stored: false only if it surely is not.
func (p *presence) mayHave(h Hash) bool {
	b := p.cur.Load()
	return b == nil || b.Has(h)
}

// add records h as stored; call it under p.mu.RLock, before the manifest
// is written. It reports whether the filter is full and wants a rebuild.
func (p *presence) add(h Hash) (full bool) {
	if p.next != nil {
		p.next.Add(h)
	}
	b := p.cur.Load()
	if b == nil {
		return false
	}
	return b.Add(h)
}

// unlost records h again after a deletion of it failed. Pebble shows a
// batch to readers before its WAL write and sync end, so a rebuild may
// have scanned the store without h meanwhile; if the write failed, the
// deletion is not in the log and Reopen brings h's manifest back, which
// the filter must then cover.
func (p *presence) unlost(h Hash) {
	p.mu.RLock()
	p.add(h) // a full filter is rebuilt at the next commit's add
	p.mu.RUnlock()
}

// install starts a rebuild: from now on every commit adds to the new
// filter as well. It returns nil if a rebuild is already running.
func (p *presence) install(capacity int64) *hashfilter.Filter {
	if !p.rebuilding.CompareAndSwap(false, true) {
		return nil
	}
	b := hashfilter.New(capacity)
	p.mu.Lock()
	p.next = b
	p.mu.Unlock()
	return b
}

// finish ends a rebuild; a complete filter replaces the current one.
func (p *presence) finish(b *hashfilter.Filter, complete bool) {
	p.mu.Lock()
	p.next = nil
	if complete {
		p.cur.Store(b)
	}
	p.mu.Unlock()
	p.rebuilding.Store(false)
}

// rebuildPresence builds a new filter from the manifests in the store and
// makes it current. It runs in the background (at Open, and when the
// filter is full); lookups use the old filter, or Pebble, meanwhile. A
// scan cut short (the store closed) leaves the old filter in place.
func (s *Store) rebuildPresence() {
	b := s.pres.install(max(2*s.bodies.Load(), s.presMin))
	if b == nil {
		return
	}
	complete := false
	defer func() { s.pres.finish(b, complete) }()
	gen := s.gen.Load()
	for info, err := range s.Bodies(context.Background(), Hash{}) {
		if err != nil && !errors.Is(err, ErrCorrupt) {
			s.log.Debug("presence filter: scan cut short", "err", err)
			return
		}
		b.Add(info.Hash) // a damaged manifest is stored too: Commit replaces it
	}
	// A scan that began before a Reopen read part of the old database:
	// keep the current filter (it only ever gains hashes) and let the
	// rebuild that Reopen starts, or the next, replace it.
	complete = gen == s.gen.Load()
}
