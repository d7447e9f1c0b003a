package storage

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// BodyInfo describes one stored body.
type BodyInfo struct {
	Hash    Hash
	Size    int64
	Written time.Time // when the body was committed (first copy wins on dedupe)
}

// Stats is the store's accounting, for placement decisions.
type Stats struct {
	Bodies    int64  // committed bodies
	BodyBytes int64  // sum of their sizes (logical bytes, before compression)
	DiskBytes uint64 // bytes Pebble's files use on disk (tables, WAL, manifest)
	FSAvail   uint64 // bytes available to this process on the filesystem of dir
	FSTotal   uint64 // size of that filesystem
	MinFree   uint64 // the reserve new bodies may not cut into (Options.MinFreeBytes)
}

// Room is how many bytes of new bodies the store would still accept.
func (st Stats) Room() uint64 {
	if st.FSAvail <= st.MinFree {
		return 0
	}
	return st.FSAvail - st.MinFree
}

// Stats returns the store's accounting and the free space of its filesystem.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	done, err := s.enter()
	if err != nil {
		return Stats{}, err
	}
	defer done()
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	st := Stats{
		Bodies:    s.bodies.Load(),
		BodyBytes: s.bytes.Load(),
		DiskBytes: s.db.Metrics().DiskSpaceUsage(),
		MinFree:   uint64(max(s.space.min, 0)),
	}
	du, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return st, fmt.Errorf("storage: disk usage of %s: %w", s.dir, err)
	}
	st.FSAvail, st.FSTotal = du.AvailBytes, du.TotalBytes
	return st, nil
}

// bodiesPageSize is how many manifests Bodies reads per Pebble iterator.
// Reading in pages keeps no iterator (and no store lock) open while the
// caller's loop body runs, so the loop may call Delete or Verify.
const bodiesPageSize = 256

// Bodies iterates over committed bodies in hash order, starting at start
// (the zero Hash for all). A body whose manifest is corrupt is yielded with
// an error wrapping ErrCorrupt (and its Hash set) and iteration goes on; any
// other error is yielded last. Bodies committed or deleted during the
// iteration may or may not be seen, and unlike Has and Reader, Bodies may
// show a body whose Commit is still waiting for its fsync (fine for GC and
// scrub, which act on old bodies through Delete and Verify).
func (s *Store) Bodies(ctx context.Context, start Hash) iter.Seq2[BodyInfo, error] {
	return func(yield func(BodyInfo, error) bool) {
		from := manifestKey(start)
		for from != nil {
			page, next, err := s.bodiesPage(ctx, from)
			for _, e := range page {
				if !yield(e.info, e.err) {
					return
				}
			}
			if err != nil {
				yield(BodyInfo{}, err)
				return
			}
			from = next
		}
	}
}

type bodyEntry struct {
	info BodyInfo
	err  error
}

// bodiesPage reads up to bodiesPageSize manifests from key from on, and
// returns the key to continue at (nil at the end).
func (s *Store) bodiesPage(ctx context.Context, from []byte) ([]bodyEntry, []byte, error) {
	done, err := s.enter()
	if err != nil {
		return nil, nil, err
	}
	defer done()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	_, hi := tagSpan(tagManifest)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: hi})
	if err != nil {
		return nil, nil, err
	}
	var page []bodyEntry
	var valueErr error
	for ok := it.First(); ok && len(page) < bodiesPageSize; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			// A value Pebble cannot read (a separated value's blob file)
			// ends the listing with an error: a page cut short without
			// one would read as the end of the list, and the presence
			// rebuild would count itself complete without the rest.
			valueErr = fmt.Errorf("storage: list bodies at %x: %w", it.Key(), err)
			break
		}
		page = append(page, decodeBodyEntry(it.Key(), v))
	}
	var next []byte
	if valueErr == nil && it.Valid() && len(page) == bodiesPageSize {
		next = append([]byte(nil), it.Key()...)
	}
	return page, next, errors.Join(valueErr, it.Error(), it.Close())
}

func decodeBodyEntry(k, v []byte) bodyEntry {
	h, ok := parseManifestKey(k)
	if !ok {
		return bodyEntry{err: fmt.Errorf("%w: malformed manifest key %x", ErrCorrupt, k)}
	}
	m, err := decodeManifest(h, v)
	return bodyEntry{info: BodyInfo{Hash: h, Size: m.size, Written: m.written}, err: err}
}

// Delete removes body h and its chunks, durably. Deleting an absent body
// succeeds. A Reader opened before Delete keeps reading its snapshot.
func (s *Store) Delete(ctx context.Context, h Hash) error {
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return err
	}
	defer release()
	return s.deleteLocked(h)
}

// DeleteIfCorrupt verifies h and deletes it only if it is still corrupt,
// both under h's lock. A verdict reached earlier may be stale: a delivery
// or a repair can have replaced the damaged copy with a good one since,
// and that one stays. It reports whether it deleted h; an absent body is
// not an error.
func (s *Store) DeleteIfCorrupt(ctx context.Context, h Hash) (bool, error) {
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return false, err
	}
	defer release()
	switch err := s.verify(ctx, h); {
	case err == nil, errors.Is(err, ErrNotFound):
		return false, nil
	case !errors.Is(err, ErrCorrupt):
		return false, err
	}
	if err := s.deleteLocked(h); err != nil {
		return false, err
	}
	return true, nil
}

// deleteLocked deletes h; the caller holds h's lock.
func (s *Store) deleteLocked(h Hash) error {
	v, ok, err := s.get(manifestKey(h))
	if err != nil {
		// Pebble cannot read the manifest's block. A tombstone would not
		// hide it (reads still meet the damaged block), so nothing is
		// deleted: only rebuilding the store removes it.
		return fmt.Errorf("storage: delete %s: %w", h, manifestReadErr(h, err))
	}
	if !ok {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	m, derr := decodeManifest(h, v)
	if derr != nil {
		// The chunks cannot be found without the manifest: they wait
		// for ReclaimLostChunks.
		s.log.Warn("deleting body with corrupt manifest; its chunks wait for the reclaim of lost chunks", "hash", h, "err", derr)
		m = manifest{}
	}
	err = errors.Join(
		b.Delete(manifestKey(h), nil),
		deleteChunks(b, m.id, m.chunks()),
		b.Merge(keyCounters, encodeCounters(-1, -m.size), nil),
	)
	if err == nil {
		err = s.commitMaybeLost(b, derr != nil)
	}
	if err != nil {
		s.pres.unlost(h)
		return fmt.Errorf("storage: delete %s: %w", h, err)
	}
	s.bodies.Add(-1)
	s.bytes.Add(-m.size)
	return nil
}

// deleteChunks adds the deletion of chunks [0, n) of write id to b, a
// point tombstone each. One range tombstone would be a single record, but
// Pebble re-sorts all of a memtable's range tombstones on the first read
// after a new one arrives, so every read slowed as large bodies were
// deleted (see DESIGN.md).
func deleteChunks(b *pebble.Batch, id uint64, n uint32) error {
	for i := range n {
		if err := b.Delete(chunkKey(id, i), nil); err != nil {
			return err
		}
	}
	return nil
}
