package storage

import (
	"context"
	"sync"
	"time"
)

// Recent writes. A body is content-addressed, so a delivery that writes a
// body already stored changes nothing on disk, yet it is about to
// reference that copy. Garbage collection must not delete a copy that a
// delivery in flight has just written or re-written. The store remembers,
// in memory, when each body was last committed (new or duplicate), and
// DeleteIfIdle refuses a body committed within the idle window. Commits
// and deletes of one hash hold its lock, so the check and the delete are
// atomic with respect to writers. After a restart nothing is remembered,
// so every body counts as recent until the store has been open for the
// window.

// maxIdleWindow is the longest idle window DeleteIfIdle honours: touches
// older than this are forgotten.
const maxIdleWindow = time.Hour

type touches struct {
	mu   sync.Mutex
	m    map[Hash]time.Time
	last time.Time // last prune
}

func (t *touches) touch(h Hash, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[Hash]time.Time{}
	}
	t.m[h] = now
	if now.Sub(t.last) > maxIdleWindow/4 {
		for k, at := range t.m {
			if now.Sub(at) > maxIdleWindow {
				delete(t.m, k)
			}
		}
		t.last = now
	}
}

func (t *touches) since(h Hash) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.m[h]
	return at, ok
}

// DeleteIfIdle deletes body h unless it was committed (written or written
// again) within idle, or the store has been open for less than idle. It
// reports whether it deleted a body and the bytes freed; an absent body
// is not an error (false, 0). idle is capped at one hour.
func (s *Store) DeleteIfIdle(ctx context.Context, h Hash, idle time.Duration) (bool, int64, error) {
	idle = min(idle, maxIdleWindow)
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return false, 0, err
	}
	defer release()
	now := s.now()
	if now.Sub(s.opened) < idle {
		return false, 0, nil
	}
	if at, ok := s.touchedAt.since(h); ok && now.Sub(at) < idle {
		return false, 0, nil
	}
	m, ok, err := s.manifest(h)
	if err != nil || !ok {
		return false, 0, err
	}
	if now.Sub(m.written) < idle {
		return false, 0, nil
	}
	if err := s.deleteLocked(h); err != nil {
		return false, 0, err
	}
	return true, m.size, nil
}

// Touched reports whether h was committed within d (in this process).
func (s *Store) Touched(h Hash, d time.Duration) bool {
	at, ok := s.touchedAt.since(h)
	return ok && s.now().Sub(at) < d
}
