package storage

import (
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// spaceRecheck is how long a free-space reading is trusted. Between
// readings, every admitted chunk is subtracted from it.
const spaceRecheck = time.Second

// spaceGuard keeps a reserve of free space on the store's filesystem:
// a write that would leave less than min bytes free is refused with
// ErrNoSpace before anything reaches Pebble. A full disk otherwise ends
// in a failed WAL write, and a failed store refuses reads too until it is
// reopened (ErrFailed); the reserve also leaves room for the flushes and
// compactions that deletions need, and for whatever shares the disk (the
// node's raft log and index). Only new bytes are checked: reads and
// deletes always proceed, and so does a duplicate of a body that fits in
// one chunk (it is recognised before anything is written; a longer body
// spills chunks before its hash is known).
type spaceGuard struct {
	min int64 // 0: no reserve
	fs  vfs.FS
	dir string

	mu    sync.Mutex
	avail int64     // free bytes at the last reading, less what was admitted since
	at    time.Time // of the last reading; zero forces one
}

// admit reserves n bytes about to be written, or refuses them.
func (g *spaceGuard) admit(n int64, now time.Time) error {
	return g.check(n, now, true)
}

// check refuses n bytes that would cut into the reserve, and with take
// counts them as written.
func (g *spaceGuard) check(n int64, now time.Time, take bool) error {
	if g.min <= 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	// A stale reading is refreshed, and so is one that says no: space may
	// have been freed since, and refusing mail is worth a statfs.
	if now.Sub(g.at) >= spaceRecheck || g.avail-n < g.min {
		du, err := g.fs.GetDiskUsage(g.dir)
		if err != nil {
			return fmt.Errorf("storage: free space of %s: %w", g.dir, err)
		}
		g.avail, g.at = int64(min(du.AvailBytes, 1<<62)), now
	}
	if g.avail-n < g.min {
		return fmt.Errorf("%w: %d bytes free on the filesystem of %s, %d must stay free", ErrNoSpace, g.avail, g.dir, g.min)
	}
	if take {
		g.avail -= n
	}
	return nil
}

// checkFresh is check(0) on a new reading of the filesystem, whatever
// the age of the last one: Reopen asks it once, after a failure that a
// full disk may have caused.
func (g *spaceGuard) checkFresh(now time.Time) error {
	g.mu.Lock()
	g.at = time.Time{}
	g.mu.Unlock()
	return g.check(0, now, false)
}

// CheckSpace reports whether a body of n bytes would be refused for
// lack of space right now (ErrNoSpace), without writing or reserving
// anything: an SMTP server asks it when the client declares a size, so a
// node at its reserve can refuse before the body is sent.
func (s *Store) CheckSpace(n int64) error {
	return s.space.check(max(n, 0), s.now(), false)
}

// Space is the free-space picture of the store's filesystem: bytes
// available to this process, the filesystem's size, and the reserve new
// bodies may not cut into. Unlike Stats it works on a failed Store too,
// for the metrics an operator alerts on.
func (s *Store) Space() (avail, total, reserve uint64, err error) {
	reserve = uint64(max(s.space.min, 0))
	du, err := s.fs.GetDiskUsage(s.dir)
	if err != nil {
		return 0, 0, reserve, fmt.Errorf("storage: disk usage of %s: %w", s.dir, err)
	}
	return du.AvailBytes, du.TotalBytes, reserve, nil
}
