package fsm

import (
	"errors"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"powermail/storage/hashfilter"
)

// bodyFilter lets a Deliver of a new body skip the read of its body
// record. Every Deliver reads the record to add its references, nearly
// every new message brings a new body, and a Pebble miss walks every
// memtable's skiplist: a tenth of a follower's apply under delivery load.
//
// It is a Bloom filter of the hashes that have a body record. Invariant:
// once built (cur set), it holds every hash with a record in the store it
// belongs to; it may hold more (deleted records stay until a rebuild).
// putBody adds a hash before its record is written, inside an apply that
// holds State.mu shared; a rebuild installs its new filter (next) with
// State.mu held exclusively and only then scans, so a record is either
// scanned or added by its writer. Restore gives the new store a new,
// unbuilt filter. Reads never depend on it beyond skipping a miss, so
// every replica applies identically whatever its filter holds.
type bodyFilter struct {
	cur        atomic.Pointer[hashfilter.Filter] // nil: not built, read the store
	next       *hashfilter.Filter                // being built; under State.mu
	rebuilding atomic.Bool
	full       atomic.Bool  // cur holds more than its capacity: rebuild
	records    atomic.Int64 // records the last complete scan found
}

// bodyFilterMin is the smallest filter: 1 Mi hashes in 1.2 MiB.
const bodyFilterMin = 1 << 20

// bodyScanPage is how many records a rebuild reads per hold of State.mu.
const bodyScanPage = 4096

func (f *bodyFilter) mayHave(raw []byte) bool {
	if f == nil || len(raw) != 32 {
		return true
	}
	c := f.cur.Load()
	return c == nil || c.Has([32]byte(raw))
}

// add records that raw has a body record; State.mu is held shared.
func (f *bodyFilter) add(raw []byte) {
	if f == nil || len(raw) != 32 {
		return // mayHave is true for such a hash
	}
	h := [32]byte(raw)
	if f.next != nil {
		f.next.Add(h)
	}
	if c := f.cur.Load(); c != nil && c.Add(h) {
		f.full.Store(true)
	}
}

// rebuildBodies builds a new filter for f from the body records of the
// current store and makes it current, unless the store is closed or
// replaced meanwhile. It runs in the background.
func (s *State) rebuildBodies(f *bodyFilter) {
	if !f.rebuilding.CompareAndSwap(false, true) {
		return
	}
	defer f.rebuilding.Store(false)
	for s.rebuildBodiesOnce(f) && f.full.Load() {
		// the store held more than the guess: again, at twice its count
	}
}

// rebuildBodiesOnce makes one pass of rebuildBodies and reports whether
// its filter became current.
func (s *State) rebuildBodiesOnce(f *bodyFilter) bool {
	capacity := max(s.opts.bodyFilterMin, 2*f.records.Load())
	if c := f.cur.Load(); c != nil {
		capacity = max(capacity, 2*c.Count()) // records found since, deleted ones too
	}
	nf := hashfilter.New(capacity)
	s.mu.Lock()
	db := s.db
	if db == nil || s.bodies != f {
		s.mu.Unlock()
		return false
	}
	f.next = nf
	f.full.Store(false)
	s.mu.Unlock()
	records, complete, err := s.scanBodies(db, f, nf)
	if err != nil {
		s.log.Warn("fsm: body filter scan failed; reads go to the store", "err", err)
	}
	if s.opts.bodyScanned != nil {
		s.opts.bodyScanned()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f.next = nil
	if !complete || s.db != db || s.bodies != f {
		return false
	}
	f.cur.Store(nf)
	f.records.Store(records)
	f.full.Store(records > capacity)
	return true
}

// scanBodies adds every body record's hash to nf, a page at a time, and
// counts them. It stops (complete false) when db is no longer the store
// or f its filter.
func (s *State) scanBodies(db *pebble.DB, f *bodyFilter, nf *hashfilter.Filter) (int64, bool, error) {
	lower, upper := []byte("r\x00"), []byte("r\x01")
	var records int64
	for {
		n, next, err := s.scanBodyPage(db, f, nf, lower, upper)
		if err != nil || n < 0 {
			return records, false, err
		}
		records += int64(n)
		if next == nil {
			return records, true, nil
		}
		lower = next
	}
}

// scanBodyPage reads up to bodyScanPage records from lower on. It returns
// the key to go on from (nil at the end), or n < 0 if the store changed.
func (s *State) scanBodyPage(db *pebble.DB, f *bodyFilter, nf *hashfilter.Filter, lower, upper []byte) (int, []byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db != db || s.bodies != f {
		return -1, nil, nil
	}
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return 0, nil, err
	}
	n := 0
	var last []byte
	for ok := it.First(); ok && n < bodyScanPage; ok = it.Next() {
		k := it.Key()
		if len(k) == 2+32 {
			nf.Add([32]byte(k[2:]))
		}
		last = append(last[:0], k...)
		n++
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, nil, err
	}
	if n < bodyScanPage {
		return n, nil, nil
	}
	return n, append(last, 0), nil
}
