package storage

import (
	"context"
	"errors"
	"fmt"
)

// Commit finishes the body and makes it durable and visible.
//
// It computes the SHA-256 of everything written. If want is not nil and
// differs, Commit returns ErrHashMismatch and keeps nothing; a replica that
// receives a body from a peer passes the hash the peer announced. Otherwise
// Commit writes the last chunk and the manifest in one synced Pebble batch
// and returns only after the fsync. Because Pebble's WAL is sequential, that
// fsync also makes the chunks written earlier without sync durable; and
// concurrent Commits share WAL fsyncs.
//
// If an intact body with the same hash exists, the new chunks are dropped
// and Commit succeeds (single-instance storage). If the existing copy fails
// verification, the new copy replaces it, so writing a body again repairs it.
//
// On any error nothing is kept (after a Pebble write or fsync failure the
// Store is failed, see ErrFailed, and the next Open cleans up). Commit ends
// the Writer either way.
func (w *Writer) Commit(ctx context.Context, want *Hash) (Hash, int64, error) {
	if w.done {
		return Hash{}, 0, ErrWriterDone
	}
	defer w.finish()
	done, err := w.s.enter()
	if err != nil {
		return Hash{}, 0, err
	}
	defer done()
	h, err := w.commit(ctx, want)
	if err != nil {
		w.discard()
		return Hash{}, 0, err
	}
	return h, w.size, nil
}

func (w *Writer) commit(ctx context.Context, want *Hash) (Hash, error) {
	if w.err != nil {
		return Hash{}, w.err
	}
	if err := w.reopened(); err != nil {
		return Hash{}, err
	}
	var h Hash
	w.sha.Sum(h[:0])
	if want != nil && *want != h {
		return Hash{}, fmt.Errorf("%w: got %s, want %s", ErrHashMismatch, h, *want)
	}
	if err := ctx.Err(); err != nil {
		return Hash{}, err
	}
	unlock, err := w.s.lockHash(ctx, h)
	if err != nil {
		return Hash{}, err
	}
	defer unlock()
	old, state, err := w.s.existing(ctx, h)
	if err != nil {
		return Hash{}, fmt.Errorf("storage: commit %s: %w", h, err)
	}
	w.s.touchedAt.touch(h, w.s.now())
	if state == bodyIntact {
		w.s.log.Debug("duplicate body, dropping new copy", "hash", h)
		w.discard()
		return h, nil
	}
	if err := w.writeManifest(h, old, state == bodyDamaged); err != nil {
		return Hash{}, fmt.Errorf("storage: commit %s: %w", h, err)
	}
	return h, nil
}

// writeManifest writes the last chunk, the manifest, the pending marker's
// deletion and the counter update in one synced batch. replace means an
// existing damaged copy (described by old, possibly zero) is overwritten.
func (w *Writer) writeManifest(h Hash, old manifest, replace bool) error {
	if err := w.s.space.admit(int64(len(w.buf)), w.s.now()); err != nil {
		return err
	}
	b := w.s.db.NewBatch()
	defer b.Close()
	if len(w.buf) > 0 {
		if w.id == 0 {
			id, err := w.s.allocID()
			if err != nil {
				return err
			}
			w.id = id
		}
		if err := putChunk(b, w.id, w.spilled, w.buf); err != nil {
			return err
		}
	}
	m := manifest{size: w.size, chunkSize: uint32(w.s.chunkSize), id: w.id, written: w.s.now()}
	errs := []error{b.Set(manifestKey(h), m.encode(h), nil)}
	if w.pending {
		errs = append(errs, b.Delete(pendingKey(w.id), nil))
	}
	if replace {
		errs = append(errs, deleteChunks(b, old.id, old.chunks()))
	} else {
		errs = append(errs, b.Merge(keyCounters, encodeCounters(1, w.size), nil))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	w.s.pres.mu.RLock() // until the manifest is in: a rebuild waits (presence.go)
	full := w.s.pres.add(h)
	// A damaged copy whose manifest did not decode leaves its chunks.
	err := w.s.commitMaybeLost(b, replace && old.id == 0)
	w.s.pres.mu.RUnlock()
	if full {
		go w.s.rebuildPresence()
	}
	if err != nil {
		return err
	}
	w.pending = false
	if !replace {
		w.s.bodies.Add(1)
		w.s.bytes.Add(w.size)
	}
	return nil
}

type bodyState int

const (
	bodyAbsent bodyState = iota
	bodyIntact
	bodyDamaged
)

// existing reports whether h is stored and, if so, whether it verifies. A
// damaged body's manifest is returned if it could be decoded (so its chunks
// can be deleted), else the zero manifest. The caller holds h's lock.
func (s *Store) existing(ctx context.Context, h Hash) (manifest, bodyState, error) {
	if !s.pres.mayHave(h) {
		return manifest{}, bodyAbsent, nil
	}
	v, ok, err := s.get(manifestKey(h))
	if err != nil {
		// Pebble could not read the manifest's table block. A new
		// manifest would shadow it for Get, but iterators still merge the
		// damaged block, so Reader and Verify would fail on the new copy
		// too: refuse it rather than acknowledge a copy nobody can read.
		return manifest{}, bodyAbsent, manifestReadErr(h, err)
	}
	if !ok {
		return manifest{}, bodyAbsent, nil
	}
	m, err := decodeManifest(h, v)
	if err == nil {
		err = s.verify(ctx, h)
	}
	switch {
	case err == nil:
		return m, bodyIntact, nil
	case errors.Is(err, ErrCorrupt):
		s.log.Warn("replacing damaged body with new copy", "hash", h, "err", err)
		return m, bodyDamaged, nil
	default:
		return manifest{}, bodyAbsent, err
	}
}
