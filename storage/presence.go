package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
)

// presence answers "is this body surely not stored?" without a Pebble
// read. Every new body's Commit asks whether its hash is stored already
// (single-instance storage), and nearly every answer is no; in Pebble a
// miss still walks every memtable's skiplist, which under delivery load
// cost 3-4% of a node's CPU.
//
// It is a Bloom filter over the hashes of committed manifests. Invariant:
// once built, it holds every hash whose manifest is in the store (it may
// hold more: deleted bodies stay until the next rebuild). Commits add
// their hash before the manifest is written; a rebuild installs its new
// filter before it scans, so a manifest is either scanned or added by its
// committer. Until the first build is done, every lookup goes to Pebble.
type presence struct {
	// mu is held shared from a commit's add until its manifest is written,
	// and exclusively while a rebuild installs its filter.
	mu         sync.RWMutex
	cur        atomic.Pointer[hashFilter] // nil until built
	next       *hashFilter                // being built; under mu
	rebuilding atomic.Bool
}

// presenceMinCapacity bounds the filter from below: 1 Mi hashes, 1.2 MiB.
const presenceMinCapacity = 1 << 20

// mayHave reports whether h may be stored: false only if it surely is not.
func (p *presence) mayHave(h Hash) bool {
	b := p.cur.Load()
	return b == nil || b.has(h)
}

// add records h as stored; call it under p.mu.RLock, before the manifest
// is written. It reports whether the filter is full and wants a rebuild.
func (p *presence) add(h Hash) (full bool) {
	if p.next != nil {
		p.next.add(h)
	}
	b := p.cur.Load()
	if b == nil {
		return false
	}
	return b.add(h)
}

// install starts a rebuild: from now on every commit adds to the new
// filter as well. It returns nil if a rebuild is already running.
func (p *presence) install(capacity int64) *hashFilter {
	if !p.rebuilding.CompareAndSwap(false, true) {
		return nil
	}
	b := newHashFilter(capacity)
	p.mu.Lock()
	p.next = b
	p.mu.Unlock()
	return b
}

// finish ends a rebuild; a complete filter replaces the current one.
func (p *presence) finish(b *hashFilter, complete bool) {
	p.mu.Lock()
	p.next = nil
	if complete {
		p.cur.Store(b)
	}
	p.mu.Unlock()
	p.rebuilding.Store(false)
}

// hashFilter is a Bloom filter of Hashes with about 10 bits per hash and 7
// probes (about 1% false positives at capacity). SHA-256 output is
// uniform, so the probes come from the hash's own bytes (double hashing).
type hashFilter struct {
	words    []atomic.Uint64
	nbits    uint64
	capacity int64
	count    atomic.Int64
}

const bloomProbes = 7

func newHashFilter(capacity int64) *hashFilter {
	words := (capacity*10 + 63) / 64
	return &hashFilter{words: make([]atomic.Uint64, words), nbits: uint64(words) * 64, capacity: capacity}
}

func (b *hashFilter) probes(h Hash, f func(bit uint64) bool) bool {
	x := binary.LittleEndian.Uint64(h[0:8])
	y := binary.LittleEndian.Uint64(h[8:16]) | 1
	for range bloomProbes {
		if !f(x % b.nbits) {
			return false
		}
		x += y
	}
	return true
}

func (b *hashFilter) has(h Hash) bool {
	return b.probes(h, func(bit uint64) bool {
		return b.words[bit/64].Load()&(1<<(bit%64)) != 0
	})
}

// add sets h's bits and reports whether the filter now holds more than
// its capacity.
func (b *hashFilter) add(h Hash) bool {
	b.probes(h, func(bit uint64) bool {
		b.words[bit/64].Or(1 << (bit % 64))
		return true
	})
	return b.count.Add(1) > b.capacity
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
	for info, err := range s.Bodies(context.Background(), Hash{}) {
		if err != nil && !errors.Is(err, ErrCorrupt) {
			s.log.Debug("presence filter: scan cut short", "err", err)
			return
		}
		b.add(info.Hash) // a damaged manifest is stored too: Commit replaces it
	}
	complete = true
}
