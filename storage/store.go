package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Chunk size limits and default.
const (
	DefaultChunkSize = 64 << 10
	MinChunkSize     = 64
	MaxChunkSize     = 1 << 20

	defaultMemTableSize = 32 << 20
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// FS is the filesystem Pebble uses; nil means vfs.Default. Tests pass
	// an errorfs-wrapped FS here to inject faults.
	FS vfs.FS
	// ChunkSize is the size of every chunk but a body's last one, for bodies
	// written from now on. 0 means DefaultChunkSize. It bounds what one Writer
	// holds in memory.
	ChunkSize int
	// Logger receives the store's and Pebble's log output; nil means
	// slog.Default().
	Logger *slog.Logger
	// MemTableSize is Pebble's memtable size; 0 means 32 MiB.
	MemTableSize uint64
	// CacheBytes is Pebble's block cache: index and filter blocks,
	// manifests, and the chunks of recently read bodies. 0 means
	// DefaultCacheBytes.
	CacheBytes int64
	// SyncInterval is the least time from the end of one WAL sync to the
	// start of the next. Commits that ask for a sync meanwhile wait and
	// then share one, so a busy store makes fewer, larger syncs at the
	// cost of up to SyncInterval of latency per commit. A commit still
	// returns only after its own data is synced. Zero means no minimum:
	// each sync starts as soon as the previous one ends. At most
	// MaxSyncInterval.
	SyncInterval time.Duration
	// MinFreeBytes is the free space that writes of new bodies must leave
	// on the store's filesystem; a write that would cut into it fails
	// with ErrNoSpace (see spaceGuard). 0 means DefaultMinFreeBytes; a
	// negative value disables the reserve.
	MinFreeBytes int64

	presenceMin int64 // tests: smallest presence filter; 0 means presenceMinCapacity
}

// DefaultMinFreeBytes is the default free-space reserve: room for
// Pebble's flushes and compactions and for the raft log and index that
// usually share the disk.
const DefaultMinFreeBytes = 256 << 20

// DefaultCacheBytes is the store's default block cache size.
const DefaultCacheBytes = 128 << 20

// MaxSyncInterval bounds Options.SyncInterval: every synced commit may
// wait that long, and a delivery is one.
const MaxSyncInterval = 100 * time.Millisecond

func (o Options) withDefaults() (Options, error) {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < MinChunkSize || o.ChunkSize > MaxChunkSize {
		return o, fmt.Errorf("%w: chunk size %d not in [%d, %d]", ErrInvalidOptions, o.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	if o.SyncInterval < 0 || o.SyncInterval > MaxSyncInterval {
		return o, fmt.Errorf("%w: sync interval %v not in [0, %v]", ErrInvalidOptions, o.SyncInterval, MaxSyncInterval)
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = defaultMemTableSize
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.presenceMin <= 0 {
		o.presenceMin = presenceMinCapacity
	}
	return o, nil
}

// Store is one node's body store. It is safe for concurrent use.
type Store struct {
	db        *pebble.DB
	fs        vfs.FS
	dir       string
	chunkSize int
	log       *slog.Logger
	now       func() time.Time

	// state is held shared by every operation and exclusively by Close
	// and Reopen, so neither races a Pebble call. Operations never nest
	// it. db is nil while a failed Store has no database open (a reopen
	// failed half way).
	state  sync.RWMutex
	closed atomic.Bool // set under state, read anywhere
	failed atomic.Pointer[fatalError]
	// gen counts the databases this Store has opened: Reopen raises it
	// (under state), so a Writer whose chunks went to an earlier one
	// knows they are gone.
	gen  atomic.Uint64
	opts Options // with defaults, for Reopen
	// walBroken is set when a write or sync of the open database's WAL
	// failed (walwatch.go): from then on commit refuses before Pebble is
	// asked. Reopen clears it for the next database.
	walBroken atomic.Pointer[fatalError]

	locks   hashLocks
	ids     idAllocator
	live    liveWriters
	readers openReaders
	bufs    sync.Pool // *[]byte chunk buffers

	bodies atomic.Int64 // committed bodies
	bytes  atomic.Int64 // their total size

	pres    presence // hashes that may be stored (presence.go)
	presMin int64    // its smallest capacity

	space spaceGuard // the free-space reserve (space.go)

	opened    time.Time // when this process opened the store
	touchedAt touches   // last commit per body, see DeleteIfIdle

	// lostMu orders the commits that set keyLostChunks with the one
	// that clears it (lostchunks.go); lostSeq gives each setting its
	// value, seeded with the open time so a restart repeats none.
	lostMu  sync.Mutex
	lostSeq atomic.Uint64
}

// Open opens (creating if needed) the store in dir and drops the chunks of
// writes that never committed.
func Open(ctx context.Context, dir string, opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{fs: o.FS, dir: dir, chunkSize: o.ChunkSize, log: o.Logger.With("component", "storage"), now: time.Now, presMin: o.presenceMin, opts: o}
	s.opened = s.now()
	s.lostSeq.Store(uint64(s.opened.UnixNano()))
	s.space = spaceGuard{min: o.MinFreeBytes, fs: o.FS, dir: dir}
	s.locks.m = make(map[Hash]*hashLock)
	s.live.m = make(map[uint64]struct{})
	s.readers.m = make(map[*Reader]struct{})
	if err := s.openDB(ctx); err != nil {
		return nil, fmt.Errorf("storage: open %s: %w", dir, err)
	}
	go s.rebuildPresence()
	return s, nil
}

// openDB opens Pebble in s.dir and loads the store's state from it. On
// an error nothing is left open and s.db is nil.
func (s *Store) openDB(ctx context.Context) error {
	cache := pebble.NewCache(s.opts.CacheBytes)
	defer cache.Unref() // the DB holds its own reference
	var db *pebble.DB
	err := catchFatal(func() (err error) {
		db, err = pebble.Open(s.dir, s.pebbleOptions(s.opts, cache))
		return err
	})
	if err != nil {
		return err
	}
	s.db = db
	if err := s.init(ctx); err != nil {
		_ = catchFatal(db.Close)
		s.db = nil
		return err
	}
	return nil
}

// init loads the write-id lease and the counters and drops every pending
// write: no Writer that could still commit into this database exists.
func (s *Store) init(ctx context.Context) error {
	if err := s.checkFormat(); err != nil {
		return err
	}
	if err := s.loadIDLease(); err != nil {
		return err
	}
	if err := s.loadCounters(ctx); err != nil {
		return err
	}
	n, err := s.cleanup(ctx, time.Unix(1<<62, 0))
	if n > 0 {
		s.log.Info("dropped uncommitted writes", "count", n)
	}
	return err
}

// checkFormat stamps an empty store with formatV1 and refuses anything else.
func (s *Store) checkFormat() error {
	v, ok, err := s.get(keyFormat)
	if err != nil {
		return err
	}
	if ok {
		if string(v) != formatV1 {
			return fmt.Errorf("%w: format key is %q, want %q", ErrFormat, v, formatV1)
		}
		return nil
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	nonEmpty := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	if nonEmpty {
		return fmt.Errorf("%w: directory holds data but no format key", ErrFormat)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(keyFormat, []byte(formatV1), nil); err != nil {
		return err
	}
	return s.commit(b, true)
}

func (s *Store) loadCounters(ctx context.Context) error {
	s.bodies.Store(0)
	s.bytes.Store(0)
	v, ok, err := s.get(keyCounters)
	if err == nil && !ok {
		return nil
	}
	var bodies, n int64
	if err == nil {
		bodies, n, err = decodeCounters(v)
	}
	if errors.Is(err, ErrCorrupt) {
		s.log.Error("counters unreadable, recounting", "err", err)
		return s.recount(ctx)
	}
	if err != nil {
		return err
	}
	s.bodies.Store(bodies)
	s.bytes.Store(n)
	return nil
}

// recount rebuilds the counters from the manifests (bodies with corrupt
// manifests count, with size 0).
func (s *Store) recount(ctx context.Context) error {
	bodies, n, err := s.countManifests(ctx)
	if err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(keyCounters, encodeCounters(bodies, n), nil); err != nil {
		return err
	}
	if err := s.commit(b, true); err != nil {
		return err
	}
	s.bodies.Store(bodies)
	s.bytes.Store(n)
	return nil
}

// countManifests counts the manifests and their sizes in one pass (bodies
// with corrupt manifests count, with size 0). It enters nothing, so that
// Open and Reopen may call it.
func (s *Store) countManifests(ctx context.Context) (bodies, n int64, err error) {
	lo, hi := tagSpan(tagManifest)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return 0, 0, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return 0, 0, errors.Join(err, it.Close())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return 0, 0, errors.Join(fmt.Errorf("storage: count bodies at %x: %w", it.Key(), err), it.Close())
		}
		e := decodeBodyEntry(it.Key(), v)
		if e.err != nil && !errors.Is(e.err, ErrCorrupt) {
			return 0, 0, errors.Join(e.err, it.Close())
		}
		bodies++
		n += e.info.Size
	}
	return bodies, n, errors.Join(it.Error(), it.Close())
}

// enter admits an operation: it fails if the Store is closed or failed, and
// otherwise returns the function that ends the operation. A failed Store
// refuses before taking the state lock, so that a Reopen waiting for the
// operations under way does not hold up the ones that would fail anyway.
func (s *Store) enter() (func(), error) {
	if err := s.refusal(); err != nil {
		return nil, err
	}
	s.state.RLock()
	if err := s.refusal(); err != nil {
		s.state.RUnlock()
		return nil, err
	}
	return s.state.RUnlock, nil
}

func (s *Store) refusal() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if fe := s.failed.Load(); fe != nil {
		return fe
	}
	return nil
}

// Close closes open Readers and the database. Uncommitted Writers are left
// for the next Open to clean up. Close returns ErrClosed if already closed.
func (s *Store) Close() error {
	s.state.Lock()
	defer s.state.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	s.closed.Store(true)
	err := s.readers.closeAll(ErrClosed)
	if s.db == nil {
		return err
	}
	if cerr := catchFatal(s.db.Close); cerr != nil {
		err = errors.Join(err, fmt.Errorf("storage: close: %w", cerr))
	}
	return err
}

// Has reports whether the body h is stored, and its size. It reads only the
// manifest; use Verify to check the data.
func (s *Store) Has(ctx context.Context, h Hash) (bool, int64, error) {
	release, err := s.enterHash(ctx, h)
	if err != nil {
		return false, 0, err
	}
	defer release()
	m, ok, err := s.manifest(h)
	return ok, m.size, err
}

// manifest reads the manifest of h. A manifest that is unreadable or does
// not decode is an error wrapping ErrCorrupt.
func (s *Store) manifest(h Hash) (manifest, bool, error) {
	v, ok, err := s.get(manifestKey(h))
	if err != nil {
		return manifest{}, false, manifestReadErr(h, err)
	}
	if !ok {
		return manifest{}, false, nil
	}
	m, err := decodeManifest(h, v)
	return m, err == nil, err
}

// manifestReadErr wraps an error Pebble gave for h's manifest. A block
// that failed Pebble's own checksum is a damaged copy of h, as much as a
// manifest failing ours: ErrCorrupt, so that readers fall back to a
// replica, the scrub deletes it and a rewrite replaces it.
func manifestReadErr(h Hash, err error) error {
	if pebble.IsCorruptionError(err) {
		return corruptf(h, "manifest unreadable: %v", err)
	}
	return fmt.Errorf("storage: read manifest %s: %w", h, err)
}

// Put stores everything r yields as one body: NewWriter, copy, Commit. See
// Writer.Commit for want.
func (s *Store) Put(ctx context.Context, r io.Reader, want *Hash) (Hash, int64, error) {
	w := s.NewWriter(ctx)
	defer w.Abort()
	if _, err := io.Copy(w, r); err != nil {
		return Hash{}, 0, err
	}
	return w.Commit(ctx, want)
}
