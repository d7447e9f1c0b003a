package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// fatalError is what Pebble reports through Logger.Fatalf: most importantly
// a failed WAL write or fsync. Pebble's default logger exits the process at
// that point; this package instead fails the Store (see ErrFailed) and
// returns the error to the caller whose commit hit it.
type fatalError struct {
	msg   string
	cause error // first error among the Fatalf arguments, if any
}

func (e *fatalError) Error() string { return "storage: pebble fatal error: " + e.msg }

func (e *fatalError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrFailed}
	}
	return []error{ErrFailed, e.cause}
}

// pebbleLogger routes Pebble's log output to slog and turns Fatalf into a
// panic carrying *fatalError, which commit and catchFatal recover. A Fatalf
// on one of Pebble's background goroutines is not recovered and crashes the
// process, which is what Pebble itself would do.
type pebbleLogger struct {
	log     *slog.Logger
	onFatal func(*fatalError)
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	fe := &fatalError{msg: fmt.Sprintf(format, args...)}
	for _, a := range args {
		if err, ok := a.(error); ok {
			fe.cause = err
			break
		}
	}
	l.log.Error("pebble fatal error, store failed until reopened", "err", fe.msg)
	l.onFatal(fe)
	panic(fe)
}

// catchFatal runs fn and converts a *fatalError panic into an error.
func catchFatal(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(*fatalError)
			if !ok {
				panic(r)
			}
			err = fe
		}
	}()
	return fn()
}

// commit commits b, durably if sync. A Pebble fatal error is returned as an
// error wrapping ErrFailed, and the Store is then failed.
func (s *Store) commit(b *pebble.Batch, sync bool) error {
	if fe := s.walBroken.Load(); fe != nil {
		return fe // Pebble would panic with its commit pipeline locked (walwatch.go)
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	return catchFatal(func() error { return b.Commit(opts) })
}

// setFailed records the first fatal error; later operations return it.
func (s *Store) setFailed(fe *fatalError) { s.failed.CompareAndSwap(nil, fe) }

// Failed returns the error that failed the Store (wrapping ErrFailed),
// or nil while it works. A failed Store refuses every operation until
// it is reopened (Reopen); a node reports it (readiness, metrics) and
// reads from other replicas meanwhile.
func (s *Store) Failed() error {
	if fe := s.failed.Load(); fe != nil {
		return fe
	}
	return nil
}

// get returns a copy of the value of key, or ok=false when absent.
func (s *Store) get(key []byte) (val []byte, ok bool, err error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val = append([]byte(nil), v...)
	return val, true, closer.Close()
}

// pebbleOptions shapes Pebble for a store of large, write-once values:
//
//   - Value separation: chunk values of blobValueMin bytes and more go to
//     blob files when a memtable is flushed, and compactions then move only
//     keys and handles. Without it every chunk is rewritten at each level
//     it passes, and a body costs several times its size in disk writes.
//   - Bloom filters on every level, because most manifest lookups are for
//     a body that is not there yet (every new delivery checks for a stored
//     copy first) and a filter answers those without reading blocks.
//   - A minimum interval between WAL syncs (Options.SyncInterval), so
//     that concurrent deliveries share a sync instead of each paying for
//     one back to back.
func (s *Store) pebbleOptions(o Options, cache *pebble.Cache) *pebble.Options {
	opts := &pebble.Options{
		FS:                 walWatchFS{FS: o.FS, onFail: s.walFailed},
		Cache:              cache,
		Logger:             pebbleLogger{log: o.Logger, onFatal: s.setFailed},
		Merger:             newMerger(),
		MemTableSize:       o.MemTableSize,
		FormatMajorVersion: pebble.FormatValueSeparation,
	}
	// Pebble's default reaction to a block that fails its checksum is
	// Logger.Fatalf, which our logger turns into a panic that only the
	// commit path recovers: a read meeting one bad sector (a FETCH, the
	// scrub, the presence rebuild that every Open starts) would take the
	// process down, at every start. The read itself returns the
	// corruption error, which this package reports as ErrCorrupt for
	// that body, so logging is all that is left to do here.
	opts.EventListener = &pebble.EventListener{
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			s.log.Error("pebble: on-disk corruption", "file", info.Path, "details", info.Details)
		},
	}
	if d := o.SyncInterval; d > 0 {
		opts.WALMinSyncInterval = func() time.Duration { return d }
	}
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: blobValueMin, MaxBlobReferenceDepth: 10,
			RewriteMinimumAge: 5 * time.Minute, TargetGarbageRatio: 0.2}
	}
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return opts
}

// blobValueMin is the smallest value stored in a blob file: chunks of
// message bodies, not manifests or counters.
const blobValueMin = 1024
