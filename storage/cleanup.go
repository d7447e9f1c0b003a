package storage

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// CleanupStale drops the chunks of writes that started more than olderThan
// ago and never committed, and returns how many writes it dropped. Writes
// of live Writers of this Store are never touched, whatever their age. Open
// already drops every uncommitted write of earlier processes, so this is a
// backstop for Writers whose Abort could not delete their chunks.
func (s *Store) CleanupStale(ctx context.Context, olderThan time.Duration) (int, error) {
	done, err := s.enter()
	if err != nil {
		return 0, err
	}
	defer done()
	return s.cleanup(ctx, s.now().Add(-olderThan))
}

// cleanup drops pending writes that started before cutoff and have no live
// Writer.
func (s *Store) cleanup(ctx context.Context, cutoff time.Time) (int, error) {
	ids, err := s.pendingBefore(cutoff)
	if err != nil {
		return 0, fmt.Errorf("storage: list pending writes: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		stale, err := s.live.stale(id, func() (bool, error) {
			_, ok, err := s.get(pendingKey(id))
			return ok, err
		})
		if err != nil {
			return 0, err
		}
		if !stale {
			continue
		}
		lo, hi := chunkSpan(id)
		if err := errors.Join(b.DeleteRange(lo, hi, nil), b.Delete(pendingKey(id), nil)); err != nil {
			return 0, err
		}
		n++
	}
	if n == 0 {
		return 0, nil
	}
	// Unsynced: if the deletion is lost, the markers survive and the next
	// cleanup repeats it.
	if err := s.commit(b, false); err != nil {
		return 0, fmt.Errorf("storage: drop pending writes: %w", err)
	}
	return n, nil
}

// pendingBefore lists write ids whose pending marker is older than cutoff.
// A marker with an unreadable time counts as old.
func (s *Store) pendingBefore(cutoff time.Time) ([]uint64, error) {
	lo, hi := tagSpan(tagPending)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	var ids []uint64
	for ok := it.First(); ok; ok = it.Next() {
		id, okKey := parsePendingKey(it.Key())
		v, err := it.ValueAndErr()
		if !okKey || err != nil {
			continue
		}
		var started time.Time
		if len(v) == 8 {
			started = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		}
		if started.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	return ids, errors.Join(it.Error(), it.Close())
}

// liveWriters is the set of write ids owned by Writers of this Store that
// have not finished. A Writer registers its id before writing the pending
// marker and unregisters after its commit or abort batch, so "not live and
// marker still present" means the write can never commit.
type liveWriters struct {
	mu sync.Mutex
	m  map[uint64]struct{}
}

func (l *liveWriters) add(id uint64) {
	l.mu.Lock()
	l.m[id] = struct{}{}
	l.mu.Unlock()
}

// reset forgets every live Writer: Reopen, whose new database none of
// them may write to.
func (l *liveWriters) reset() {
	l.mu.Lock()
	clear(l.m)
	l.mu.Unlock()
}

func (l *liveWriters) remove(id uint64) {
	l.mu.Lock()
	delete(l.m, id)
	l.mu.Unlock()
}

// stale reports whether id has no live Writer and its marker is still
// present (checked by pending, under the lock, against the latest state).
func (l *liveWriters) stale(id uint64, pending func() (bool, error)) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.m[id]; ok {
		return false, nil
	}
	return pending()
}

// idAllocator hands out write ids. Ids are never reused: the store persists
// a lease (keyIDLease) above every id handed out, in blocks of idLeaseSize,
// and a new process starts at the stored lease.
type idAllocator struct {
	mu          sync.Mutex
	next, limit uint64
}

const idLeaseSize = 1 << 16

func (s *Store) loadIDLease() error {
	v, ok, err := s.get(keyIDLease)
	if err != nil {
		return err
	}
	limit := uint64(1) // id 0 means "no chunks"
	if ok {
		if len(v) != 8 {
			return fmt.Errorf("%w: id lease has %d bytes", ErrCorrupt, len(v))
		}
		limit = max(limit, binary.BigEndian.Uint64(v))
	}
	s.ids.next, s.ids.limit = limit, limit
	return nil
}

// allocID returns a fresh write id, extending the lease durably if needed.
func (s *Store) allocID() (uint64, error) {
	a := &s.ids
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.limit {
		limit := a.next + idLeaseSize
		b := s.db.NewBatch()
		defer b.Close()
		err := b.Set(keyIDLease, binary.BigEndian.AppendUint64(nil, limit), nil)
		if err == nil {
			err = s.commit(b, true)
		}
		if err != nil {
			return 0, fmt.Errorf("storage: extend write-id lease: %w", err)
		}
		a.limit = limit
	}
	id := a.next
	a.next++
	return id, nil
}
