package fsm

import (
	"encoding/binary"
	"math"
)

// folderValidity is a new folder's UIDVALIDITY (RFC 9051 §2.3.1.1).
//
// The first rule was uint32 of the creating entry's index: different for
// a folder deleted and created again, but the same for the folders one
// entry creates (a new mailbox's defaults), and a rename keeps it. After
// deleting Trash and renaming Junk (created with it) to Trash, the pair
// (Trash, UIDVALIDITY) named another folder with the same UIDs, which a
// client's cache takes for the old one.
//
// Under the distinct rule (a command that sets Distinct, written in
// EncodingJSON4 so that an older release stops instead of applying the
// first rule) each folder gets one more than the last value given out,
// and never less than the entry's index: every folder has its own, and
// values only grow, also past those the first rule gave. Once the
// counter exists every folder takes its value from it, with or without
// Distinct (a proposer that read an older setting): the first rule could
// hand out a value the counter gave already. No release without the
// counter applies entries by then (the raise to encoding 4 stops it).
func folderValidity(tx *txn, distinct bool) (uint32, error) {
	last, err := readIndexKey(tx.b, keyValidity, "last UIDVALIDITY")
	if err != nil {
		return 0, err
	}
	if !distinct && last == 0 {
		return uidValidity(tx.index), nil
	}
	v := max(uint64(uidValidity(tx.index)), last+1)
	if v > math.MaxUint32 {
		v = uint64(uidValidity(tx.index)) // four billion folders on: wraps, as the index does
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return uint32(v), tx.b.Set(keyValidity, buf[:], nil)
}
