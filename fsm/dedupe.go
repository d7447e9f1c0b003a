package fsm

import (
	"encoding/binary"
	"hash/maphash"
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
// fell out of the window, in index order.
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
// window.
func rememberDelivery(tx *txn, id string, res DeliverResult) error {
	if id == "" {
		return nil
	}
	if tx.ids != nil {
		tx.ids.add(id) // before the record: the set holds every stored ID
	}
	if err := tx.put(dedupeKey(id), res); err != nil {
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

func expireDeliveries(tx *txn, below uint64) error {
	lower := []byte("y\x00")
	upper := binary.BigEndian.AppendUint64([]byte("y\x00"), below)
	it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	// At most 64 per entry, so an apply stays cheap; one new record per
	// delivery means the backlog drains.
	var ids []string
	var last []byte
	for ok := it.First(); ok && len(ids) < 64; ok = it.Next() {
		k := it.Key()
		ids = append(ids, string(k[len(lower)+9:]))
		last = append(last[:0], k...)
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, id := range ids {
		if err := tx.del(dedupeKey(id)); err != nil {
			return err
		}
		if tx.ids != nil {
			tx.ids.drop(id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	return tx.b.DeleteRange(lower, append(last, 0), nil)
}

// recentIDs holds a hash of every delivery ID in the window, so that
// seenDelivery answers a new ID (nearly every delivery) without a store
// read that would miss. It may hold more than the store (a hash shared by
// two IDs, or an ID whose batch then failed and stopped the node), never
// less: an ID is added before its record is written, dropped after it is
// deleted, and the set is rebuilt from the store on Open and Restore.
type recentIDs struct {
	seed maphash.Seed
	mu   sync.Mutex
	m    map[uint64]uint32 // ID hash -> IDs with that hash
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

func (r *recentIDs) add(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[r.key(id)]++
}

func (r *recentIDs) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := r.key(id)
	if r.m[k] <= 1 {
		delete(r.m, k)
		return
	}
	r.m[k]--
}

// load replaces the set with the IDs stored in db.
func (r *recentIDs) load(db *pebble.DB) error {
	lower := []byte("y\x00")
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte("y\x01")})
	if err != nil {
		return err
	}
	m := map[uint64]uint32{}
	for ok := it.First(); ok; ok = it.Next() {
		m[r.key(string(it.Key()[len(lower)+9:]))]++
	}
	if err := it.Close(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m = m
	return nil
}
