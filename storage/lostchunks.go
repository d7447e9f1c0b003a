package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Lost chunks. A body's chunks are found through its manifest, so a body
// deleted while its manifest does not decode (deleteLocked), or replaced
// by a good copy over such a manifest (writeManifest), leaves chunks that
// nothing names: their bytes stay on disk, and the deleted body's size
// stays in the counters, since nothing could say how large it was. Both
// set keyLostChunks in the batch that drops the manifest, and
// ReclaimLostChunks then deletes the chunks of every write id that no
// manifest and no pending marker names, and corrects the counters.
//
// Invariant: chunks of a write id are written only while its pending
// marker exists (the first spilled chunk's batch sets it), or in the
// batch that writes its manifest; the marker goes in the batch that
// writes the manifest or deletes the chunks; and ids are never reused.
// So in one snapshot, a write id with chunks but with neither a manifest
// nor a pending marker finished before the snapshot, and no write can
// name it again: its chunks are lost for good, and deleting them later
// races with nothing.

// keyLostChunks marks that chunks may have lost their manifest. Its value
// tells one setting from the next (lostMark), so a reclaim that began
// before a newer loss leaves the mark for that one.
var keyLostChunks = []byte{tagLostChunks}

// Reclaimed says what ReclaimLostChunks deleted.
type Reclaimed struct {
	Writes int   // write ids whose chunks were deleted
	Chunks int   // chunk keys deleted
	Bytes  int64 // chunk octets deleted
}

// commitMaybeLost commits b, synced; if lost, b leaves chunks that no
// manifest names, and the commit marks them for ReclaimLostChunks with a
// value no earlier mark had.
func (s *Store) commitMaybeLost(b *pebble.Batch, lost bool) error {
	if !lost {
		return s.commit(b, true)
	}
	s.lostMu.Lock()
	defer s.lostMu.Unlock()
	if err := b.Set(keyLostChunks, binary.BigEndian.AppendUint64(nil, s.lostSeq.Add(1)), nil); err != nil {
		return err
	}
	return s.commit(b, true)
}

// ReclaimLostChunks deletes chunks that no manifest names, if a manifest
// that did not decode was deleted or replaced since the last reclaim;
// otherwise it returns at once. While any manifest does not decode it
// deletes nothing (that manifest's chunks cannot be told from lost ones)
// and keeps the mark: the scrub deletes such a body, and the next
// reclaim follows.
func (s *Store) ReclaimLostChunks(ctx context.Context) (Reclaimed, error) {
	done, err := s.enter()
	if err != nil {
		return Reclaimed{}, err
	}
	defer done()
	mark, wanted, err := s.get(keyLostChunks)
	if err != nil || !wanted {
		return Reclaimed{}, err
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	view, err := readOwners(ctx, snap)
	if err != nil {
		return Reclaimed{}, fmt.Errorf("storage: reclaim lost chunks: %w", err)
	}
	if view.undecodable > 0 {
		s.log.Info("lost chunks not reclaimed while a manifest does not decode", "manifests", view.undecodable)
		return Reclaimed{}, nil
	}
	lost, got, err := lostChunkKeys(ctx, snap, view)
	if err != nil {
		return Reclaimed{}, fmt.Errorf("storage: reclaim lost chunks: %w", err)
	}
	if err := s.dropLost(lost, view, mark); err != nil {
		return Reclaimed{}, fmt.Errorf("storage: reclaim lost chunks: %w", err)
	}
	if got.Writes > 0 {
		s.log.Warn("reclaimed chunks whose manifest was lost", "writes", got.Writes, "chunks", got.Chunks, "bytes", got.Bytes)
	}
	return got, nil
}

// owners is what one snapshot says owns chunks, and what the counters
// should be.
type owners struct {
	ids         []uint64 // write ids named by a manifest, sorted
	pending     map[uint64]struct{}
	bodies      int64 // manifests
	bytes       int64 // their sizes
	undecodable int
	// counted is the counters' value in the snapshot.
	countedBodies, countedBytes int64
}

func (o *owners) owned(id uint64) bool {
	if _, ok := o.pending[id]; ok {
		return true
	}
	_, ok := slices.BinarySearch(o.ids, id)
	return ok
}

// readOwners reads the manifests, pending markers and counters of snap.
func readOwners(ctx context.Context, snap *pebble.Snapshot) (*owners, error) {
	o := &owners{pending: make(map[uint64]struct{})}
	lo, hi := tagSpan(tagManifest)
	err := scan(snap, lo, hi, func(it *pebble.Iterator) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, okKey := parseManifestKey(it.Key())
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		m, derr := decodeManifest(h, v)
		if !okKey || derr != nil {
			o.undecodable++
			return nil
		}
		o.bodies++
		o.bytes += m.size
		if m.id != 0 {
			o.ids = append(o.ids, m.id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(o.ids)
	lo, hi = tagSpan(tagPending)
	err = scan(snap, lo, hi, func(it *pebble.Iterator) error {
		if id, ok := parsePendingKey(it.Key()); ok {
			o.pending[id] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v, closer, err := snap.Get(keyCounters)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return o, nil
	case err != nil:
		return nil, err
	}
	o.countedBodies, o.countedBytes, err = decodeCounters(v)
	return o, errors.Join(err, closer.Close())
}

// lostChunkKeys lists the chunk keys of write ids that o says nobody
// owns, and their sizes without reading their values. An owned id's
// chunks are skipped with one seek.
func lostChunkKeys(ctx context.Context, snap *pebble.Snapshot, o *owners) ([][]byte, Reclaimed, error) {
	lo, hi := tagSpan(tagChunk)
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, Reclaimed{}, err
	}
	var keys [][]byte
	var got Reclaimed
	last := uint64(0)
	for ok := it.First(); ok; {
		if err := ctx.Err(); err != nil {
			return nil, Reclaimed{}, errors.Join(err, it.Close())
		}
		k := it.Key()
		if len(k) != chunkKeyLen {
			ok = it.Next() // not a chunk key of this layout: leave it
			continue
		}
		id := binary.BigEndian.Uint64(k[1:])
		if o.owned(id) {
			if id == math.MaxUint64 {
				break // no id after it; chunkSpan(id+1) would wrap to 0
			}
			next, _ := chunkSpan(id + 1)
			ok = it.SeekGE(next)
			continue
		}
		if id != last || got.Writes == 0 {
			got.Writes++
			last = id
		}
		keys = append(keys, slices.Clone(k))
		got.Chunks++
		// The length only: a lost chunk's value is not read, since the
		// damage that broke its manifest may have reached it too, and an
		// unreadable value would end this and every later reclaim.
		lv := it.LazyValue()
		got.Bytes += int64(max(lv.Len()-chunkHeaderLen, 0))
		ok = it.Next()
	}
	return keys, got, errors.Join(it.Error(), it.Close())
}

// dropLost deletes keys and sets the counters to what the snapshot's
// manifests say, as a difference, so that commits after the snapshot
// keep theirs. It clears the mark only if no loss was marked since mark
// was read.
func (s *Store) dropLost(keys [][]byte, o *owners, mark []byte) error {
	s.lostMu.Lock()
	defer s.lostMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		if err := b.Delete(k, nil); err != nil {
			return err
		}
	}
	dBodies, dBytes := o.bodies-o.countedBodies, o.bytes-o.countedBytes
	if dBodies != 0 || dBytes != 0 {
		if err := b.Merge(keyCounters, encodeCounters(dBodies, dBytes), nil); err != nil {
			return err
		}
	}
	now, ok, err := s.get(keyLostChunks)
	if err != nil {
		return err
	}
	if ok && string(now) == string(mark) {
		if err := b.Delete(keyLostChunks, nil); err != nil {
			return err
		}
	}
	if err := s.commit(b, true); err != nil {
		return err
	}
	s.bodies.Add(dBodies)
	s.bytes.Add(dBytes)
	return nil
}

// scan calls fn for every key of snap in [lo, hi).
func scan(snap *pebble.Snapshot, lo, hi []byte, fn func(*pebble.Iterator) error) error {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it); err != nil {
			return errors.Join(err, it.Close())
		}
	}
	return errors.Join(it.Error(), it.Close())
}
