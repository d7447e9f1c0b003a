package fsm

import (
	"encoding/binary"
	"encoding/hex"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// BodyPlace changes where a body's replicas are recorded: repair and
// rebalance add a replica after its copy is fsynced and verified, and
// remove one that is gone (node removed, copy corrupt, rebalanced away).
// It never leaves a body without a listed replica.
//
// A change decided on a listing is made conditional on it (If): a repair
// round that outlived its leadership, or raced another change, must not
// trim or move away a copy on a listing that is no longer the one it
// looked at. A change whose condition fails is not taken (false).
type BodyPlace struct {
	Hash   string   `json:"hash"`
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
	// If, when set, is the listing the change was decided on; the change
	// applies only while the body is listed on exactly these replicas.
	If []string `json:"if,omitempty"`
}

func (*BodyPlace) Type() CmdType { return CmdBodyPlace }

func (c *BodyPlace) apply(tx *txn) (any, error) {
	h, err := parseHash(c.Hash)
	if err != nil {
		return nil, err
	}
	var b Body
	if ok, err := tx.get(bodyKey(h), &b); err != nil || !ok || b.Collecting != 0 {
		return false, err
	}
	if c.If != nil && !sameMembers(c.If, b.Replicas) {
		return false, nil
	}
	for _, id := range c.Add {
		if ok, err := tx.isMember(id); err != nil || !ok {
			return nil, orErr(err, ErrInvalid, "replica %s of body %s is not a cluster member", id, c.Hash)
		}
	}
	next := slices.DeleteFunc(append(slices.Clone(b.Replicas), c.Add...), func(id string) bool {
		return slices.Contains(c.Remove, id)
	})
	next = idSet(next)
	if len(next) == 0 {
		return nil, errorf(ErrInvalid, "body %s would have no replica left", c.Hash)
	}
	b.Replicas = next
	return true, putBody(tx, h, b)
}

// The placement mark is the raft index of the last entry that may have
// left a referenced body on other than R listed replicas: a body record
// written with fewer or more than R (a delivery under W < R, a copy
// unlisted as missing or corrupt, a rebalance's extra copy), a body
// referenced again after it had no references, a member added or
// removed, or R changed. Writes that leave a body on exactly R
// do not move it. The repair leader skips its periodic scan of every
// body record while the mark is where it was at its last clean scan and
// the same members are down, usually none (node/repair_skip.go), so a
// large cluster does not read its whole directory every interval.

// markPlacement records this entry as the placement mark.
func (t *txn) markPlacement() error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], t.index)
	return t.b.Set(keyPlacementMark, buf[:], nil)
}

// markOffR moves the placement mark if b is a referenced body whose
// listing is not exactly R replicas.
func markOffR(tx *txn, b Body) error {
	if b.Refs <= 0 || b.Collecting != 0 {
		return nil
	}
	settings, err := tx.settings()
	if err != nil || len(b.Replicas) == settings.Replicas {
		return err
	}
	return tx.markPlacement()
}

// PlacementMark returns the placement mark (0 before any).
func (s *State) PlacementMark() (uint64, error) {
	var out uint64
	err := s.view(func(r pebble.Reader) (err error) {
		out, err = readIndexKey(r, keyPlacementMark, "placement mark")
		return err
	})
	return out, err
}

// BodyRecord is one body record with its hash, for scans.
type BodyRecord struct {
	Hash string
	Body
}

// Bodies lists up to limit body records after the hex hash `after` ("":
// from the start), in hash order.
func (s *State) Bodies(after string, limit int) ([]BodyRecord, error) {
	lower := []byte("r\x00")
	if after != "" {
		raw, err := parseHash(after)
		if err != nil {
			return nil, err
		}
		lower = append(bodyKey(raw), 0)
	}
	var out []BodyRecord
	err := s.view(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd([]byte("r\x00"))})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
			rec := BodyRecord{Hash: hex.EncodeToString(it.Key()[2:])}
			if err := decodeRecord(it.Value(), &rec.Body); err != nil {
				return err
			}
			out = append(out, rec)
		}
		return it.Error()
	})
	return out, err
}

// idSet returns ids sorted, without repeats: the form replica lists are
// stored and compared in.
func idSet(ids []string) []string { return slices.Compact(slices.Sorted(slices.Values(ids))) }

// sameMembers reports whether a and b list the same IDs, in any order.
func sameMembers(a, b []string) bool { return slices.Equal(idSet(a), idSet(b)) }
