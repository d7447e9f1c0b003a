package storage

import (
	"context"
	"encoding/binary"
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
// older than this may be forgotten.
const maxIdleWindow = time.Hour

// touches remembers the last commit of every body for at least
// maxIdleWindow, in two generations: a touch goes into cur, and when cur
// is a window old it becomes prev and the old prev is dropped whole, so
// forgetting costs nothing per entry and never stalls commits (a sweep
// over a map of millions of bodies would, under the lock). A touch is
// kept at least one window, at most about two. Bodies are keyed by the
// first 8 bytes of their hash: two bodies sharing them only make a
// deletion wait, and an entry takes about 20 bytes instead of 60.
//
// Times are kept as offsets from the first touch, which carries the
// monotonic clock reading, so a step of the wall clock (NTP, a resumed
// VM) cannot make a body just written look idle.
type touches struct {
	mu        sync.Mutex
	cur, prev map[uint64]time.Duration // hash prefix -> last commit, since base
	base      time.Time                // the first touch
	began     time.Time                // when cur was started
}

func touchKey(h Hash) uint64 { return binary.LittleEndian.Uint64(h[:8]) }

func (t *touches) touch(h Hash, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.base.IsZero() {
		t.base = now
	}
	if t.cur == nil || now.Sub(t.began) >= maxIdleWindow {
		t.prev, t.cur, t.began = t.cur, make(map[uint64]time.Duration), now
	}
	t.cur[touchKey(h)] = now.Sub(t.base)
}

func (t *touches) since(h Hash) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := touchKey(h)
	at, ok := t.cur[k]
	if !ok {
		at, ok = t.prev[k]
	}
	return t.base.Add(at), ok
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
