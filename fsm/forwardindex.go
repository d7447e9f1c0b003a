package fsm

import (
	"bytes"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// The target index: one empty key per (target, forward) pair,
//
//	"t\x00" tdomain "\x00" tlocal "\x00" sdomain "\x00" slocal
//
// (locals folded as in every key), so the forwards that name an address,
// its sub-addresses or any address of a domain are one prefix scan
// (forwarddepth.go). It exists from the gated encoding on: the raise to
// it indexes every forward in that entry (indexAllForwards), and from
// then ForwardAdd and ForwardRemove keep it, on every replica alike. A
// cluster below it holds no such key, so its state is as it was.
const targetIndexPrefix = "t\x00"

// indexPage bounds the forwards indexAllForwards reads before it writes
// their keys: a batch is not written while an iterator of it is open.
const indexPage = 4096

// targetIndexKey is the key of target t named by the forward whose
// address part (addrPart) is src.
func targetIndexKey(t Address, src string) []byte {
	return []byte(targetIndexPrefix + addrPart(t) + "\x00" + src)
}

// indexTargets writes (or, with del, deletes) the index keys of the
// targets of the forward at src. A stored target that does not parse
// (a rule changed since it was added) is left out alike on every replica.
func indexTargets(tx *txn, src string, targets []string, del bool) error {
	for _, s := range targets {
		t, err := ParseAddress(s)
		if err != nil {
			continue
		}
		key := targetIndexKey(t, src)
		if del {
			err = tx.b.Delete(key, nil)
		} else {
			err = tx.b.Set(key, nil, nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// indexAllForwards indexes every forward's targets, in key order, a
// page at a time. It runs in the entry that raises the cluster to the
// gated encoding: one entry, so that every replica holds the index from
// the same index on, and a snapshot taken after it carries it.
func indexAllForwards(tx *txn) error {
	prefix := allForwardsPrefix()
	from := prefix
	for {
		type fw struct {
			src     string
			targets []string
		}
		var page []fw
		it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok && len(page) < indexPage; ok = it.Next() {
			var f Forward
			raw, err := it.ValueAndErr()
			if err == nil {
				err = decodeRecord(raw, &f)
			}
			if err != nil {
				it.Close()
				return err
			}
			page = append(page, fw{src: string(it.Key()[len(prefix):]), targets: f.Targets})
		}
		if err := it.Close(); err != nil {
			return err
		}
		for _, f := range page {
			if err := indexTargets(tx, f.src, f.targets, false); err != nil {
				return err
			}
		}
		if len(page) < indexPage {
			return nil
		}
		from = append([]byte(string(prefix)+page[len(page)-1].src), 0) // the next key after the last
	}
}

// indexReader scans the target index with one iterator, which a check
// seeks for each prefix: a new iterator of a batch for each of
// thousands of short scans cost ten times the seeks.
type indexReader struct {
	it *pebble.Iterator
}

func newIndexReader(r pebble.Reader) (*indexReader, error) {
	p := []byte(targetIndexPrefix)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	return &indexReader{it: it}, nil
}

func (r *indexReader) close() error { return r.it.Close() }

// sources returns, for each index key under p, its target's local part
// (folded) and its forward's address part, in key order.
func (r *indexReader) sources(p []byte) (targets, sources []string, err error) {
	for ok := r.it.SeekGE(p); ok && bytes.HasPrefix(r.it.Key(), p); ok = r.it.Next() {
		// "t" tdomain tlocal sdomain slocal
		parts := bytes.SplitN(r.it.Key(), []byte{0}, 5)
		if len(parts) != 5 {
			continue
		}
		targets = append(targets, string(parts[2]))
		sources = append(sources, string(parts[3])+"\x00"+string(parts[4]))
	}
	return targets, sources, r.it.Error()
}

// sortedKeys returns a set's keys in order, so that what a check reports
// does not depend on a map's order.
func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// sourcesAfter returns the forwards' address parts of the index keys
// under p (one target's keys: its prefix ends in "\x00") that sort after
// the address part after, at most limit of them (0: all), in order: a
// walk of the index from a key, so that a page of a long listing reads
// no more than it returns.
func (r *indexReader) sourcesAfter(p []byte, after string, limit int) ([]string, error) {
	from := p
	if after != "" {
		from = append(append(slices.Clone(p), after...), 0)
	}
	var out []string
	for ok := r.it.SeekGE(from); ok && bytes.HasPrefix(r.it.Key(), p) && (limit <= 0 || len(out) < limit); ok = r.it.Next() {
		out = append(out, string(r.it.Key()[len(p):]))
	}
	return out, r.it.Error()
}

// forwardsToIndexed is ForwardsTo over the target index: the forwards
// that name a exactly, and those that name a sub-address of it with no
// record of its own (landingOn, without the catch-all: a forward to an
// unknown address of the domain does not name a), whose address parts
// sort after the address part after. The exact ones are read from after
// on, at most limit; the sub-addresses' (few, as a rule) are all looked
// at. Then a read of each forward listed.
func forwardsToIndexed(r pebble.Reader, a Address, after string, limit int) ([]Forward, error) {
	if a.Local == "" {
		return nil, nil
	}
	idx, err := newIndexReader(r)
	if err != nil {
		return nil, err
	}
	defer idx.close()
	x := addrPart(a)
	srcs, err := idx.sourcesAfter([]byte(targetIndexPrefix+x+"\x00"), after, limit)
	if err != nil {
		return nil, err
	}
	if domain, local, _ := strings.Cut(x, "\x00"); strings.IndexByte(local, '+') < 0 {
		through, err := landingThrough(r, idx, domain, local)
		if err != nil {
			return nil, err
		}
		for _, s := range through {
			if s > after {
				srcs = append(srcs, s)
			}
		}
	}
	set := map[string]bool{}
	for _, s := range srcs {
		set[s] = true
	}
	var out []Forward
	for _, src := range sortedKeys(set) {
		if limit > 0 && len(out) >= limit {
			break
		}
		var fw Forward
		ok, err := getJSON(r, []byte("f\x00"+src), &fw) // forwardKey of the address part
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, fw)
		}
	}
	return out, nil
}
