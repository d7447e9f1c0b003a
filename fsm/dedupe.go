package fsm

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Delivery de-duplication. A proposer that lost track of a commit (the
// leader died or the connection dropped after the entry was sent) retries
// it with the same delivery ID; the retry must not deliver twice. Applied
// IDs are remembered, with their result, for dedupeWindow raft entries:
// retries happen within seconds, so the window only has to outlast them.
//
//	"x\x00" id                       DeliverResult of that delivery
//	"y\x00" index(8, BE) "\x00" id    the same ID, ordered by the index that applied it
//
// Expiry is deterministic: each remembered delivery drops the records that
// fell out of the window, in index order. A Copy with an ID (EncodingJSON8)
// is remembered the same way, with an empty result (from encoding 14 with
// the UIDs it gave, copyrecord.go); the node gives copy IDs a prefix of
// their own, so they never meet a delivery's.
const dedupeWindow = 200000

func dedupeKey(id string) []byte { return []byte("x\x00" + id) }

func dedupeOrderKey(index uint64, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte("y\x00"), index)
	return append(append(k, 0), id...)
}

// seenDelivery returns the recorded result of an applied delivery ID.
func seenDelivery(tx *txn, id string) (DeliverResult, bool, error) {
	var res DeliverResult
	if id == "" {
		return res, false, nil
	}
	if tx.ids != nil && !tx.ids.mayHave(id) {
		return res, false, nil // a new delivery: no read that would miss
	}
	ok, err := tx.get(dedupeKey(id), &res)
	return res, ok, err
}

// rememberDelivery records id's result and expires records older than the
// window. tx.ids must be set: it orders the records for expiry.
func rememberDelivery(tx *txn, id string, res DeliverResult) error {
	if id == "" {
		return nil
	}
	return remember(tx, id, res)
}

// remember records rec under id (a delivery's result, or a copy's
// record, copyrecord.go) and expires records older than the window.
func remember(tx *txn, id string, rec any) error {
	tx.ids.add(tx.index, id) // before the record: the set holds every stored ID
	if err := tx.put(dedupeKey(id), rec); err != nil {
		return err
	}
	if err := tx.b.Set(dedupeOrderKey(tx.index, id), nil, nil); err != nil {
		return err
	}
	if tx.index <= dedupeWindow {
		return nil
	}
	return expireDeliveries(tx, tx.index-dedupeWindow)
}

// expireDeliveries deletes the records applied below index below, at most
// 64 per entry so that an apply stays cheap (one new record per delivery
// means a backlog drains). It takes them from the in-memory order rather
// than a scan of the order keys, and deletes with point tombstones: a
// range tombstone per delivery made every later read re-sort all the range
// tombstones in the memtable, so applies slowed as the memtable filled,
// and a scan would walk the tombstones earlier expiries left.
func expireDeliveries(tx *txn, below uint64) error {
	for _, r := range tx.ids.expire(below, 64) {
		if err := errors.Join(tx.del(dedupeKey(r.id)), tx.b.Delete(dedupeOrderKey(r.index, r.id), nil)); err != nil {
			return err
		}
	}
	return nil
}

// recentIDs holds a hash of every delivery ID in the window, so that
// seenDelivery answers a new ID (nearly every delivery) without a store
// read that would miss, and the stored records in index order, so that
// expiry needs no scan. It may hold more than the store (a hash shared by
// two IDs, or an ID whose batch then failed and stopped the node), never
// less: an ID is added before its record is written, dropped when its
// deletion is written, and the set is rebuilt from the store on Open and
// Restore.
type recentIDs struct {
	seed  maphash.Seed
	mu    sync.Mutex
	m     map[uint64]uint32 // ID hash -> IDs with that hash
	order []remembered      // stored records, oldest first
}

type remembered struct {
	index uint64
	id    string
}

func newRecentIDs() *recentIDs {
	return &recentIDs{seed: maphash.MakeSeed(), m: map[uint64]uint32{}}
}

func (r *recentIDs) key(id string) uint64 { return maphash.String(r.seed, id) }

func (r *recentIDs) mayHave(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[r.key(id)] > 0
}

// add notes the record of id applied at index, the highest index so far.
func (r *recentIDs) add(index uint64, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[r.key(id)]++
	r.order = append(r.order, remembered{index, strings.Clone(id)})
}

// expire removes and returns up to max of the oldest records applied
// below index below.
func (r *recentIDs) expire(below uint64, max int) []remembered {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for n < len(r.order) && n < max && r.order[n].index < below {
		n++
	}
	out := r.order[:n:n]
	r.order = r.order[n:]
	for _, x := range out {
		k := r.key(x.id)
		if r.m[k] <= 1 {
			delete(r.m, k)
		} else {
			r.m[k]--
		}
	}
	return out
}

// load replaces the set with the records stored in db.
func (r *recentIDs) load(db *pebble.DB) error {
	lower := []byte("y\x00")
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte("y\x01")})
	if err != nil {
		return err
	}
	m := map[uint64]uint32{}
	var order []remembered
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		x := remembered{binary.BigEndian.Uint64(k[len(lower):]), string(k[len(lower)+9:])}
		m[r.key(x.id)]++
		order = append(order, x)
	}
	if err := it.Close(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m, r.order = m, order
	return nil
}
