package fsm

import (
	"encoding/binary"

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
	ok, err := tx.get(dedupeKey(id), &res)
	return res, ok, err
}

// rememberDelivery records id's result and expires records older than the
// window.
func rememberDelivery(tx *txn, id string, res DeliverResult) error {
	if id == "" {
		return nil
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
	}
	if len(ids) == 0 {
		return nil
	}
	return tx.b.DeleteRange(lower, append(last, 0), nil)
}
