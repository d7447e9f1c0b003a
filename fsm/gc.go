package fsm

import (
	"encoding/hex"

	"github.com/cockroachdb/pebble/v2"
)

// Garbage collection of bodies nobody references.
//
//	"z\x00" hash(32)   empty: the body's reference count is zero
//
// A body goes in three steps, each safe on its own:
//
//  1. BodyCollect marks a zero-reference record as being collected (a
//     tombstone holding the entry's index).
//  2. The leader asks every node to delete its copy. A node deletes only
//     if its own state still shows the same tombstone, and only a copy
//     that no write touched recently (storage.DeleteIfIdle).
//  3. BodyForget removes the record, if the tombstone is still the same.
//
// A delivery of the same content at any point revives the record: its
// replicas become exactly the delivery's (the old copies may be gone),
// and the tombstone is cleared, so steps 2 and 3 stop. A delivery's own
// fresh copies survive step 2 because they are recent.

func zeroRefKey(hash []byte) []byte { return append([]byte("z\x00"), hash...) }

// putBody writes a body record and keeps the zero-reference index.
func putBody(tx *txn, hash []byte, b Body) error {
	tx.bodies.add(hash) // before the record (bodyfilter.go)
	if b.Refs <= 0 {
		if err := tx.b.Set(zeroRefKey(hash), nil, nil); err != nil {
			return err
		}
	} else if err := tx.del(zeroRefKey(hash)); err != nil {
		return err
	}
	if err := markOffR(tx, b); err != nil {
		return err
	}
	return tx.put(bodyKey(hash), b)
}

// BodyCollect starts the collection of a body with no references.
type BodyCollect struct {
	Hash string `json:"hash"`
}

// CollectResult is BodyCollect's value: the tombstone's index (0 if the
// body is referenced again or gone) and the replicas to delete.
type CollectResult struct {
	Collect  uint64   `json:"collect"`
	Replicas []string `json:"replicas,omitempty"`
}

func (*BodyCollect) Type() CmdType { return CmdBodyCollect }

func (c *BodyCollect) apply(tx *txn) (any, error) {
	h, err := parseHash(c.Hash)
	if err != nil {
		return nil, err
	}
	var b Body
	if ok, err := tx.get(bodyKey(h), &b); err != nil || !ok || b.Refs > 0 {
		return CollectResult{}, err
	}
	if b.Collecting == 0 {
		b.Collecting = tx.index
		if err := tx.put(bodyKey(h), b); err != nil {
			return nil, err
		}
	}
	return CollectResult{Collect: b.Collecting, Replicas: b.Replicas}, nil
}

// BodyForget removes the record of a body whose copies were deleted under
// the tombstone Collect. A revived body (or a newer tombstone) is kept.
type BodyForget struct {
	Hash    string `json:"hash"`
	Collect uint64 `json:"collect"`
}

func (*BodyForget) Type() CmdType { return CmdBodyForget }

func (c *BodyForget) apply(tx *txn) (any, error) {
	h, err := parseHash(c.Hash)
	if err != nil {
		return nil, err
	}
	var b Body
	if ok, err := tx.get(bodyKey(h), &b); err != nil || !ok || b.Refs > 0 || b.Collecting != c.Collect {
		return false, err
	}
	if err := tx.del(zeroRefKey(h)); err != nil {
		return nil, err
	}
	return true, tx.del(bodyKey(h))
}

// ZeroRefBodies lists up to limit bodies without references, by hash,
// starting after the hex hash `after` ("" for the start).
func (s *State) ZeroRefBodies(after string, limit int) ([]string, error) {
	lower := []byte("z\x00")
	if after != "" {
		raw, err := parseHash(after)
		if err != nil {
			return nil, err
		}
		lower = append(zeroRefKey(raw), 0)
	}
	var out []string
	err := s.view(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd([]byte("z\x00"))})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
			out = append(out, hex.EncodeToString(it.Key()[2:]))
		}
		return it.Error()
	})
	return out, err
}
