package storage

import (
	"context"
	"errors"
	"sync"
)

// hashLocks serialises commits and deletes of the same hash, so that the
// "does it exist" check and the write that follows are atomic per hash,
// while commits of different hashes proceed (and share fsyncs) in parallel.
type hashLocks struct {
	mu sync.Mutex
	m  map[Hash]*hashLock
}

type hashLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// lock acquires h's lock, or returns ctx's error. Call the returned
// function to release it.
func (l *hashLocks) lock(ctx context.Context, h Hash) (func(), error) {
	l.mu.Lock()
	e := l.m[h]
	if e == nil {
		e = &hashLock{ch: make(chan struct{}, 1)}
		l.m[h] = e
	}
	e.refs++
	l.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; l.release(h, e) }, nil
	case <-ctx.Done():
		l.release(h, e)
		return nil, ctx.Err()
	}
}

// lockHash takes h's lock and then re-checks that the store has not failed
// meanwhile. Readers of h take it too: Pebble makes a batch visible before
// its WAL fsync completes, so only under the lock is "visible" the same as
// "committed and fsynced".
func (s *Store) lockHash(ctx context.Context, h Hash) (func(), error) {
	unlock, err := s.locks.lock(ctx, h)
	if err != nil {
		return nil, err
	}
	if fe := s.failed.Load(); fe != nil {
		unlock()
		return nil, fe
	}
	return unlock, nil
}

func (l *hashLocks) release(h Hash, e *hashLock) {
	l.mu.Lock()
	e.refs--
	if e.refs == 0 {
		delete(l.m, h)
	}
	l.mu.Unlock()
}

// openReaders tracks Readers so that Store.Close can close their Pebble
// iterators before closing the database.
type openReaders struct {
	mu sync.Mutex
	m  map[*Reader]struct{}
}

func (o *openReaders) add(r *Reader) {
	o.mu.Lock()
	o.m[r] = struct{}{}
	o.mu.Unlock()
}

// close closes r's iterator once; later calls return nil. Its owner
// calls it (Reader.Close), so r's unread bytes may be dropped too.
func (o *openReaders) close(r *Reader) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.cur = nil
	return o.closeLocked(r, ErrClosed)
}

// closeLocked closes r's iterator; r's later reads return why (unless
// they already fail otherwise). Close and Reopen call it from their own
// goroutine while r's owner may be in Seek, which sets r.cur and r.pos
// without entering the store: so it leaves those alone. The bytes r.cur
// points at are never read again, since fill returns r.err first.
func (o *openReaders) closeLocked(r *Reader, why error) error {
	if r.it == nil {
		return nil
	}
	err := r.it.Close()
	r.it = nil
	if r.err == nil {
		r.err = why
	}
	delete(o.m, r)
	return err
}

// closeAll closes every open Reader, whose reads then return why.
func (o *openReaders) closeAll(why error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var errs []error
	for r := range o.m {
		errs = append(errs, o.closeLocked(r, why))
	}
	return errors.Join(errs...)
}

// getBuf returns an empty chunk buffer with capacity chunkSize.
func (s *Store) getBuf() []byte {
	if p, ok := s.bufs.Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, s.chunkSize)
}

// putBuf returns a chunk buffer for reuse by later Writers.
func (s *Store) putBuf(b []byte) {
	if cap(b) == s.chunkSize {
		s.bufs.Put(&b)
	}
}

// enterHash enters the store and takes h's lock; release undoes both.
func (s *Store) enterHash(ctx context.Context, h Hash) (release func(), err error) {
	done, err := s.enter()
	if err != nil {
		return nil, err
	}
	unlock, err := s.lockHash(ctx, h)
	if err != nil {
		done()
		return nil, err
	}
	return func() { unlock(); done() }, nil
}
