package fsm

// The dedupe record of a named Copy (Copy.ID, dedupe.go). From command
// encoding 8 to 13 it keeps nothing (an empty DeliverResult), and a
// repeat (a node proposes a piece again when a leader change hid its
// commit) answers an empty result: node could then neither answer
// COPYUID for that piece nor expunge its copies when a later piece of
// the COPY failed. From 14 (gatedEncoding14) the record keeps the
// destination's UIDVALIDITY and the UIDs the copy gave, and a repeat
// answers them. The record is JSON under the same key as a delivery's,
// with field names of its own, so a record written before the raise
// decodes as one that keeps nothing and its repeat answers as before.
//
// Destination UIDs are given in one ascending run (copyInto), so the
// record keeps the first; source UIDs are kept as runs. A copy of more
// than MaxCopyRecordMessages keeps nothing: node sends pieces of at
// most its --raft-entry-messages (2,000 unless raised), and a record
// stays under the dedupe window for 200,000 entries.

// MaxCopyRecordMessages is the largest copy whose dedupe record keeps
// its UIDs.
const MaxCopyRecordMessages = 2000

// copyRecord is the dedupe record of a named Copy from encoding 14.
// UIDValidity 0 (every record written before 14) keeps nothing.
type copyRecord struct {
	UIDValidity uint32     `json:"copy_validity,omitempty"`
	Src         []UIDRange `json:"copy_src,omitempty"`
	DstFirst    uint32     `json:"copy_dst,omitempty"`
}

// copyRecordOf is the record of res: its UIDs in runs, or nothing past
// MaxCopyRecordMessages.
func copyRecordOf(res CopyResult) copyRecord {
	if len(res.Src) > MaxCopyRecordMessages || len(res.Src) != len(res.Dst) {
		return copyRecord{}
	}
	rec := copyRecord{UIDValidity: res.UIDValidity}
	if len(res.Dst) > 0 {
		rec.DstFirst = res.Dst[0]
	}
	for _, u := range res.Src {
		if k := len(rec.Src); k > 0 && rec.Src[k-1][1] < ^uint32(0) && rec.Src[k-1][1]+1 == u {
			rec.Src[k-1][1] = u
			continue
		}
		rec.Src = append(rec.Src, UIDRange{u, u})
	}
	return rec
}

// result is the CopyResult rec keeps: empty for a record that keeps
// nothing, as a repeat answered before 14.
func (rec copyRecord) result() CopyResult {
	res := CopyResult{UIDValidity: rec.UIDValidity, Src: []uint32{}, Dst: []uint32{}}
	next := rec.DstFirst
	for _, r := range rec.Src {
		for u := r[0]; ; u++ {
			res.Src = append(res.Src, u)
			res.Dst = append(res.Dst, next)
			next++
			if u == r[1] {
				break
			}
		}
	}
	return res
}

// seenCopy reports whether the copy named id was applied, and the
// result its record keeps (from 14; empty otherwise).
func seenCopy(tx *txn, id string) (CopyResult, bool, error) {
	var rec copyRecord
	if id == "" || tx.ids != nil && !tx.ids.mayHave(id) {
		return CopyResult{}, false, nil
	}
	ok, err := tx.get(dedupeKey(id), &rec)
	if err != nil || !ok {
		return CopyResult{}, ok, err
	}
	kept, err := gated14(tx)
	if err != nil || !kept {
		rec = copyRecord{}
	}
	return rec.result(), true, err
}

// rememberCopy records the copy named id: with the UIDs of res from 14,
// as an empty delivery result below.
func rememberCopy(tx *txn, id string, res CopyResult) error {
	if id == "" {
		return nil
	}
	kept, err := gated14(tx)
	if err != nil {
		return err
	}
	if !kept {
		return rememberDelivery(tx, id, DeliverResult{})
	}
	return remember(tx, id, copyRecordOf(res))
}
