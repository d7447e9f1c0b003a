// Package hashfilter is a Bloom filter of SHA-256 hashes, safe for
// concurrent use. The body store and the state machine use it to answer
// "this body is surely not recorded" without a Pebble read that would
// miss (storage/presence.go, fsm/bodyfilter.go).
//
// Invariant: Has(h) is true for every h given to Add. It may also be true
// for a hash never added (about 1% of them at capacity, more beyond).
package hashfilter

import (
	"encoding/binary"
	"sync/atomic"
)

// Filter holds about 10 bits per hash of its capacity and sets 7 of them
// per hash. SHA-256 output is uniform, so the bit positions come from the
// hash's own bytes (double hashing) rather than from another hash.
type Filter struct {
	words    []atomic.Uint64
	nbits    uint64
	capacity int64
	count    atomic.Int64
}

const probes = 7

// New returns an empty filter sized for capacity hashes (at least 1).
func New(capacity int64) *Filter {
	capacity = max(capacity, 1)
	words := (capacity*10 + 63) / 64
	return &Filter{words: make([]atomic.Uint64, words), nbits: uint64(words) * 64, capacity: capacity}
}

// Capacity is the number of hashes the filter was sized for.
func (f *Filter) Capacity() int64 { return f.capacity }

func (f *Filter) each(h *[32]byte, fn func(bit uint64) bool) bool {
	x := binary.LittleEndian.Uint64(h[0:8])
	y := binary.LittleEndian.Uint64(h[8:16]) | 1
	for range probes {
		if !fn(x % f.nbits) {
			return false
		}
		x += y
	}
	return true
}

// Has reports whether h may have been added: false means surely not.
func (f *Filter) Has(h [32]byte) bool {
	return f.each(&h, func(bit uint64) bool {
		return f.words[bit/64].Load()&(1<<(bit%64)) != 0
	})
}

// Add records h. It reports whether the filter now holds more hashes than
// its capacity, which is when its owner should rebuild it. A hash whose
// bits were all set already (added before, or a false positive) does not
// count, so adding the same hashes again never fills the filter.
func (f *Filter) Add(h [32]byte) (full bool) {
	fresh := false
	f.each(&h, func(bit uint64) bool {
		mask := uint64(1) << (bit % 64)
		if f.words[bit/64].Or(mask)&mask == 0 {
			fresh = true
		}
		return true
	})
	if !fresh {
		return f.count.Load() > f.capacity
	}
	return f.count.Add(1) > f.capacity
}

// Count is about how many distinct hashes were added (a little less: a
// new hash that is a false positive is not counted).
func (f *Filter) Count() int64 { return f.count.Load() }
