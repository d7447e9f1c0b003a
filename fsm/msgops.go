package fsm

import (
	"cmp"
	"encoding/binary"
	"maps"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// UIDRange is an inclusive range of UIDs; commands carry ranges, not
// lists, so "1:*" on a large folder stays a small log entry.
type UIDRange [2]uint32

// MaxUIDRanges bounds the ranges of one command.
const MaxUIDRanges = 10000

func checkRanges(rs []UIDRange) error {
	if len(rs) > MaxUIDRanges {
		return errorf(ErrInvalid, "%d UID ranges, at most %d", len(rs), MaxUIDRanges)
	}
	for _, r := range rs {
		if r[0] == 0 || r[0] > r[1] {
			return errorf(ErrInvalid, "bad UID range %d:%d", r[0], r[1])
		}
	}
	return nil
}

// folderMessages reads the messages of folder f whose UIDs fall in
// ranges (nil: all), in UID order, each once. Ranges are clamped to
// f.LowUID: nothing lives below it.
func folderMessages(tx *txn, a Address, f Folder, ranges []UIDRange) ([]Message, error) {
	prefix := messagePrefix(a, f.ID)
	if ranges == nil {
		ranges = []UIDRange{{1, ^uint32(0)}}
	}
	ranges = mergeRanges(ranges)
	var out []Message
	for _, r := range ranges {
		r[0] = max(r[0], f.LowUID)
		if r[0] > r[1] {
			continue
		}
		lower := binary.BigEndian.AppendUint32(slices.Clone(prefix), r[0])
		upper := prefixEnd(prefix)
		if r[1] < ^uint32(0) {
			upper = binary.BigEndian.AppendUint32(slices.Clone(prefix), r[1]+1)
		}
		it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return nil, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			var m Message
			if err := decodeRecord(it.Value(), &m); err != nil {
				it.Close()
				return nil, err
			}
			out = append(out, m)
		}
		if err := it.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// scanAfter is the UID a scan of the whole folder starts after.
func (f Folder) scanAfter() uint32 { return max(f.LowUID, 1) - 1 }

// advanceLowUID moves f.LowUID up to the folder's first live UID, or to
// UIDNext when none is left (the next message will get that UID). It
// runs after removals, so the tombstones it walks are mostly the ones
// just written, and each older one is walked at most once here.
func advanceLowUID(tx *txn, a Address, f *Folder) error {
	prefix := messagePrefix(a, f.ID)
	lower := binary.BigEndian.AppendUint32(slices.Clone(prefix), max(f.LowUID, 1))
	it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	if it.First() {
		k := it.Key()
		f.LowUID = binary.BigEndian.Uint32(k[len(k)-4:])
	} else {
		f.LowUID = max(f.UIDNext, f.LowUID)
	}
	return it.Close()
}

// mergeRanges sorts ranges and joins overlapping or adjacent ones. The
// order compares UIDs, never their difference as an int, which wraps on
// a 32-bit build and would select other messages there than elsewhere.
func mergeRanges(rs []UIDRange) []UIDRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(x, y UIDRange) int { return cmp.Compare(x[0], y[0]) })
	var out []UIDRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint64(r[0]) <= uint64(out[n-1][1])+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

// count adds (sign +1) or removes (-1) m from a folder's counters.
func (f *Folder) count(m Message, sign int64) {
	f.Messages += sign
	f.Bytes += sign * m.Size
	if !slices.Contains(m.Flags, `\Seen`) {
		f.Unseen += sign
	}
	if slices.Contains(m.Flags, `\Deleted`) {
		f.Deleted += sign
	}
}

// removeMessages deletes msgs from folder f and releases their bodies.
// It writes f; the caller writes mb. It reads the body records before it
// deletes anything, so that an error leaves no write behind.
func removeMessages(tx *txn, a Address, mb *Mailbox, f *Folder, msgs []Message) error {
	release := map[string]int64{}
	for _, m := range msgs {
		release[m.Hash]++
	}
	bodies, err := planBodyRefs(tx, release, -1)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := tx.delMessage(a, f.ID, m.UID); err != nil {
			return err
		}
		f.count(m, -1)
		mb.UsedBytes -= m.Size
		mb.Messages--
	}
	f.ModSeq = tx.index
	if err := advanceLowUID(tx, a, f); err != nil {
		return err
	}
	if err := writeBodyRefs(tx, bodies); err != nil {
		return err
	}
	return tx.put(folderKey(a, f.Name), *f)
}

// addBodyRefs adds sign*count references to each body. A body whose
// count reaches zero keeps its record (with its replicas) until garbage
// collection has deleted every copy.
func addBodyRefs(tx *txn, refs map[string]int64, sign int64) error {
	bodies, err := planBodyRefs(tx, refs, sign)
	if err != nil {
		return err
	}
	return writeBodyRefs(tx, bodies)
}

// bodyRef is a body record with its new reference count, not yet written.
type bodyRef struct {
	hash []byte
	body Body
}

// planBodyRefs reads the records of the bodies in refs, in hash order,
// and moves each count by sign*count; it writes nothing, so a command can
// learn of a missing body (an error when adding) before its first write.
// Releasing a body without a record skips it.
func planBodyRefs(tx *txn, refs map[string]int64, sign int64) ([]bodyRef, error) {
	out := make([]bodyRef, 0, len(refs))
	for _, h := range slices.Sorted(maps.Keys(refs)) {
		raw, err := parseHash(h)
		if err != nil {
			return nil, err
		}
		var b Body
		if ok, err := tx.get(bodyKey(raw), &b); err != nil || !ok {
			if err == nil && sign > 0 {
				return nil, errorf(ErrInvalid, "body %s has no record", h)
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		b.Refs += sign * refs[h]
		out = append(out, bodyRef{hash: raw, body: b})
	}
	return out, nil
}

// writeBodyRefs writes what planBodyRefs planned.
func writeBodyRefs(tx *txn, bodies []bodyRef) error {
	for _, r := range bodies {
		if err := putBody(tx, r.hash, r.body); err != nil {
			return err
		}
	}
	return nil
}

var systemFlags = map[string]string{`\seen`: `\Seen`, `\answered`: `\Answered`, `\flagged`: `\Flagged`,
	`\deleted`: `\Deleted`, `\draft`: `\Draft`}

// MaxKeyword bounds the length of one keyword.
const MaxKeyword = 128

// ValidKeyword reports whether fl is a keyword the state stores: an IMAP
// atom of at most MaxKeyword octets, printable ASCII without specials.
func ValidKeyword(fl string) bool {
	if fl == "" || len(fl) > MaxKeyword || strings.ContainsAny(fl, "(){ %*\"\\]") {
		return false
	}
	for _, r := range fl {
		if r <= 0x20 || r >= 0x7f {
			return false
		}
	}
	return true
}

// canonicalFlags checks flags (system flags of RFC 9051 section 2.3.2 in
// any case, or keywords that are IMAP atoms) and returns them with system
// flags in canonical case, sorted and without duplicates. A list of more
// than MaxFlags is refused as sent, duplicates included: it bounds the
// command, as it always has, so that every release decides alike.
func canonicalFlags(flags []string) ([]string, error) {
	out := make([]string, 0, len(flags))
	for _, fl := range flags {
		if strings.HasPrefix(fl, `\`) {
			canon, ok := systemFlags[strings.ToLower(fl)]
			if !ok {
				return nil, errorf(ErrInvalid, "flag %s cannot be stored", fl)
			}
			out = append(out, canon)
			continue
		}
		if !ValidKeyword(fl) {
			return nil, errorf(ErrInvalid, "keyword %q is not an IMAP atom", fl)
		}
		out = append(out, fl)
	}
	if len(out) > MaxFlags {
		return nil, errorf(ErrInvalid, "%d flags, at most %d", len(out), MaxFlags)
	}
	return cleanFlags(out)
}
