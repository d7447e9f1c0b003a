package storage

import (
	"context"
	"fmt"
	"time"
)

// reopenPoll is how often Reopen tries for the state lock while
// operations that entered before the failure are still under way.
const reopenPoll = time.Millisecond

// Reopen brings a failed Store back without a new process: it closes the
// Pebble database and opens it again, which replays its WAL, and then
// does what Open does (drops every pending write, reloads the write-id
// lease and the counters, rebuilds the presence filter in the
// background). What was acknowledged (Commit returned nil) was fsynced
// and is there; a write that failed may be there too, intact, or not at
// all, as after a crash.
//
// Reopen does nothing on a working Store and refuses, leaving it failed,
// while the free space of its filesystem is below Options.MinFreeBytes
// (ErrNoSpace): a store reopened on a full disk would fail again at the
// next write. It waits, up to ctx, for the operations under way to end
// (new ones are refused meanwhile, as by any failed Store). Readers
// opened before the failure are closed and then return an error
// wrapping ErrFailed; Writers that wrote chunks before it fail with
// ErrFailed at their next Write or Commit (their chunks are dropped).
// A Reopen that fails leaves the Store failed; it may be tried again.
func (s *Store) Reopen(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if s.failed.Load() == nil {
		return nil
	}
	if err := s.space.checkFresh(s.now()); err != nil {
		return fmt.Errorf("storage: reopen %s: %w", s.dir, err)
	}
	if err := s.lockState(ctx); err != nil {
		return fmt.Errorf("storage: reopen %s: operations under way did not end: %w", s.dir, err)
	}
	defer s.state.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	fe := s.failed.Load()
	if fe == nil {
		return nil // reopened by someone else meanwhile
	}
	ended := fmt.Errorf("storage: reader ended by the reopen of the failed store: %w", fe)
	if err := s.readers.closeAll(ended); err != nil {
		s.log.Debug("closing readers of the failed store", "err", err)
	}
	if s.db != nil {
		if err := catchFatal(s.db.Close); err != nil {
			s.log.Debug("closing the failed store's database", "err", err)
		}
		s.db = nil
	}
	// Writers of this process that wrote chunks belong to the database
	// just closed: none of them may commit into the next one, and their
	// pending writes are dropped with every other.
	s.gen.Add(1)
	s.live.reset()
	s.walBroken.Store(nil) // the next database's WAL is a new file
	if err := s.openDB(ctx); err != nil {
		return fmt.Errorf("storage: reopen %s: %w", s.dir, err)
	}
	s.failed.Store(nil)
	s.log.Info("failed store reopened", "bodies", s.bodies.Load(), "bytes", s.bytes.Load(), "failure", fe.msg)
	go s.rebuildPresence()
	return nil
}

// lockState takes the state lock exclusively, polling: a blocked Lock
// would hold up every new operation (RLock waits behind it), which on a
// failed store only has to be refused.
func (s *Store) lockState(ctx context.Context) error {
	if s.state.TryLock() {
		return nil
	}
	t := time.NewTicker(reopenPoll)
	defer t.Stop()
	for !s.state.TryLock() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
