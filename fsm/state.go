package fsm

import (
	"context"
	"encoding"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure a State.
type Options struct {
	// CacheBytes is Pebble's block cache size. Zero means 256 MiB, which
	// holds the mailbox records of about a million mailboxes.
	CacheBytes int64
	// MemTableBytes is the largest Pebble memtable. Zero means 64 MiB.
	// Pebble starts memtables small and grows them, so a small state
	// never holds that much; a large directory build or restore needs
	// it: with Pebble's 4 MiB default each flush made an L0 file that
	// overlapped all the others, compactions fell behind, and every
	// point read (most of an add's lookups are misses) passed up to ten
	// L0 sublevels (fsm/DESIGN.md, "Memtables of 64 MiB").
	MemTableBytes uint64
	Logger        *slog.Logger
	// OnChange, if set, is called after each applied batch with the
	// mailboxes (Address.Key form) whose folders or messages changed. It
	// runs on the apply path: it must not block.
	OnChange func(mailboxes []string)
	// OnRestore, if set, is called after a snapshot replaced the state:
	// any mailbox may have changed, and no per-mailbox list is kept.
	OnRestore func()
	// OnStateDigest, if set, is called on the apply path right after a
	// StateDigest entry is committed, with a view of the state at it
	// (statedigest.go). It must not block, and must Release the view.
	OnStateDigest func(id string, v *View)

	bodyFilterMin int64                           // tests: smallest body filter; 0 means bodyFilterMin
	bodyScanned   func()                          // tests: called between a rebuild's scan and its install
	refusedWrote  func(index uint64, typ CmdType) // tests: a refused command left writes (applyCommand)
	fs            vfs.FS                          // tests: Pebble's filesystem; nil is the OS's
}

// State is the directory state machine of one node.
type State struct {
	dir  string
	opts Options
	log  *slog.Logger
	reg  registry

	mu      sync.RWMutex // held exclusively only to swap db (Restore, Close) or install a body filter
	db      *pebble.DB
	applied atomic.Uint64

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced after each apply

	changes changeLog    // recent message writes per folder, for ViewSince
	hot     hotRecords   // decoded settings and members (hot.go)
	ids     *recentIDs   // delivery IDs in the de-duplication window (dedupe.go); swapped under mu
	bodies  *bodyFilter  // hashes with a body record (bodyfilter.go); swapped under mu
	dueLow  atomic.Int64 // no queue due key below this time (queuecmds.go); 0 after Open and Restore
	// resolveReads counts the exact lookups of recipient lookups
	// (ResolveReads).
	resolveReads atomic.Int64

	viewsMu sync.Mutex
	views   map[*View]struct{} // open views, closed by Restore and Close (statedigest.go)
}

// Entry is one committed raft log entry. Data is nil for entries that
// carry no command (configuration changes, no-ops): they only advance the
// applied index.
type Entry struct {
	Index uint64
	Data  []byte
}

// Result is the outcome of one entry. Err is a business error (see Error).
type Result struct {
	Value any
	Err   error
}

// Open opens (or creates) the state kept under dir.
func Open(dir string, opts Options) (*State, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 256 << 20
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 64 << 20
	}
	if opts.bodyFilterMin <= 0 {
		opts.bodyFilterMin = bodyFilterMin
	}
	s := &State{dir: dir, opts: opts, log: opts.Logger, reg: newRegistry(), notify: make(chan struct{}),
		ids: newRecentIDs(), bodies: &bodyFilter{}}
	db, err := openCurrent(dir, opts)
	if err != nil {
		return nil, err
	}
	if err := checkStateEncoding(db); err != nil {
		_ = db.Close()
		return nil, err
	}
	if err := s.ids.load(db); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("load delivery IDs: %w", err)
	}
	s.db = db
	idx, err := readApplied(db)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.applied.Store(idx)
	s.changes.reset(idx)
	s.hot.invalidate()
	go s.rebuildBodies(s.bodies)
	return s, nil
}

// Close closes the state. It is safe to call once.
func (s *State) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	s.closeViews()
	err := s.db.Close()
	s.db = nil
	return err
}

// Applied is the index of the last applied entry.
func (s *State) Applied() uint64 { return s.applied.Load() }

// WaitApplied blocks until the applied index reaches idx or ctx ends.
func (s *State) WaitApplied(ctx context.Context, idx uint64) error {
	for {
		s.notifyMu.Lock()
		ch := s.notify
		s.notifyMu.Unlock()
		if s.applied.Load() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for index %d (applied %d): %w", idx, s.applied.Load(), ctx.Err())
		}
	}
}

func (s *State) wake() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// Sync makes every applied entry durable. Call it before raft may discard
// log entries covered by a snapshot.
func (s *State) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.LogData(nil, pebble.Sync)
}

// ApplyBatch applies committed entries in order and returns one result per
// entry. Entries at or below the applied index are skipped (their result
// is empty), which makes replay after a crash harmless. It panics on an
// undecodable entry or a storage failure, since either would let this
// replica diverge.
func (s *State) ApplyBatch(entries []Entry) []Result {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		panic("fsm: apply on closed state")
	}
	results := make([]Result, len(entries))
	for done := 0; done < len(entries); {
		done += s.applyRun(entries[done:], results[done:])
	}
	return results
}

// applyRun applies entries in one Pebble batch, up to and including the
// first StateDigest that apply takes, and returns how many it consumed.
// The run is committed with the applied index at its last entry, so a
// digest's view (taken right after the commit, by the only writer) is the
// state after exactly that entry on every replica, however raft cut the
// log into batches.
func (s *State) applyRun(entries []Entry, results []Result) int {
	applied := s.applied.Load()
	b := s.db.NewIndexedBatch()
	defer b.Close()
	touched := map[string]struct{}{}
	hot := &hotTxn{rec: &s.hot, db: s.db}
	last := applied
	n := len(entries)
	var digest *StateDigest
	for i, e := range entries {
		if e.Index <= last {
			continue
		}
		last = e.Index
		if len(e.Data) == 0 {
			continue
		}
		cmd := s.reg.decode(e.Index, e.Data)
		results[i] = s.applyCommand(cmd, &txn{b: b, index: e.Index, touched: touched, changes: &s.changes, hot: hot, ids: s.ids, bodies: s.bodies, dueLow: &s.dueLow})
		if d, ok := cmd.(*StateDigest); ok && results[i].Err == nil {
			digest, n = d, i+1
			break
		}
	}
	if last == applied {
		return n
	}
	s.commitRun(b, last, hot.dirty, touched)
	if digest != nil {
		s.takeDigestView(digest.ID, last)
	}
	return n
}

// commitRun commits a run's batch with the applied index last and makes
// the index visible.
func (s *State) commitRun(b *pebble.Batch, last uint64, hotDirty bool, touched map[string]struct{}) {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], last)
	if err := b.Set(keyApplied, buf[:], nil); err != nil {
		panic(fmt.Sprintf("fsm: record applied index: %v", err))
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		panic(fmt.Sprintf("fsm: commit entries up to %d: %v", last, err))
	}
	if hotDirty {
		s.hot.invalidate() // before the new index is visible (hot.go)
	}
	s.applied.Store(last)
	s.wake()
	if s.bodies.full.Load() && !s.bodies.rebuilding.Load() {
		go s.rebuildBodies(s.bodies)
	}
	if len(touched) > 0 && s.opts.OnChange != nil {
		s.opts.OnChange(slices.Collect(maps.Keys(touched)))
	}
}

// applyCommand applies one decoded entry. It panics on a storage failure
// (any error that is not an *Error). A business error is the entry's
// result, and the entry must not have written before it: the entries of
// a batch share one Pebble batch with no rollback per entry, so whatever
// a refused command wrote is committed with the others. Commands
// validate before their first write; one that did not is logged, not
// undone, so that every node still applies alike.
func (s *State) applyCommand(cmd Command, tx *txn) Result {
	before := tx.b.Count()
	v, err := cmd.apply(tx)
	var be *Error
	if err != nil && !errors.As(err, &be) {
		panic(fmt.Sprintf("fsm: entry %d: storage failure: %v", tx.index, err))
	}
	if err != nil && tx.b.Count() != before {
		s.log.Error("fsm: a refused command left writes", "index", tx.index, "type", cmd.Type(), "writes", tx.b.Count()-before, "err", err)
		if s.opts.refusedWrote != nil {
			s.opts.refusedWrote(tx.index, cmd.Type())
		}
	}
	return Result{Value: v, Err: err}
}

func readApplied(r pebble.Reader) (uint64, error) {
	return readIndexKey(r, keyApplied, "applied index")
}

// readIndexKey reads a raft index stored under key (0 if absent).
func readIndexKey(r pebble.Reader, key []byte, what string) (uint64, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", what, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%s of %d bytes", what, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// getJSON reads key into v, reporting whether it existed.
func getJSON(r pebble.Reader, key []byte, v any) (bool, error) {
	raw, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %q: %w", key, err)
	}
	defer closer.Close()
	if err := decodeRecord(raw, v); err != nil {
		return false, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}

// decodeRecord uses a record's binary codec when it has one, else JSON.
func decodeRecord(raw []byte, v any) error {
	if bu, ok := v.(encoding.BinaryUnmarshaler); ok {
		return bu.UnmarshalBinary(raw)
	}
	return json.Unmarshal(raw, v)
}

func encodeRecord(v any) ([]byte, error) {
	if bm, ok := v.(encoding.BinaryMarshaler); ok {
		return bm.MarshalBinary()
	}
	return json.Marshal(v)
}

// hasPrefix reports whether any key starts with p.
func hasPrefix(r pebble.Reader, p []byte) (bool, error) {
	_, ok, err := firstUnder(r, p)
	return ok, err
}

// firstUnder returns what follows p in the first key that starts with
// p, and whether there is one.
func firstUnder(r pebble.Reader, p []byte) (string, bool, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return "", false, fmt.Errorf("iterate %q: %w", p, err)
	}
	ok := it.First()
	var rest string
	if ok {
		rest = string(it.Key()[len(p):])
	}
	if err := it.Close(); err != nil {
		return "", false, fmt.Errorf("iterate %q: %w", p, err)
	}
	return rest, ok, nil
}

// txn is the write view of one entry: reads see earlier entries of the
// same batch.
type txn struct {
	b       *pebble.Batch
	index   uint64
	touched map[string]struct{} // mailboxes (Address.Key) whose folders changed
	changes *changeLog          // nil in tests that build a txn by hand
	hot     *hotTxn             // nil in tests that build a txn by hand
	ids     *recentIDs          // nil in tests that build a txn by hand
	bodies  *bodyFilter         // nil in tests that build a txn by hand
	dueLow  *atomic.Int64       // nil in tests that build a txn by hand
}

// touch records that a's folders or messages changed in this entry.
func (t *txn) touch(a Address) {
	if t.touched != nil {
		t.touched[a.Key()] = struct{}{}
	}
}

// count counts keys with prefix p, stopping at limit.
func (t *txn) count(p []byte, limit int) (int, error) {
	it, err := t.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return 0, err
	}
	n := 0
	for ok := it.First(); ok && n < limit; ok = it.Next() {
		n++
	}
	return n, it.Close()
}

func (t *txn) get(key []byte, v any) (bool, error) { return getJSON(t.b, key, v) }

func (t *txn) has(key []byte) (bool, error) {
	_, closer, err := t.b.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get %q: %w", key, err)
	}
	closer.Close()
	return true, nil
}

func (t *txn) put(key []byte, v any) error {
	raw, err := encodeRecord(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	t.wrote(key)
	return t.b.Set(key, raw, nil)
}

func (t *txn) del(key []byte) error {
	t.wrote(key)
	return t.b.Delete(key, nil)
}

// putMessage writes a message record. Every message write goes through
// putMessage or delMessage, which log it for ViewSince (changelog.go).
func (t *txn) putMessage(a Address, folderID uint64, m Message) error {
	t.logMessage(a, folderID, m.UID)
	return t.put(messageKey(a, folderID, m.UID), m)
}

// delMessage deletes a message record (see putMessage), and the POP3
// unique-id kept for it if any (pop3uidl.go). The latter is a point
// delete with no read; no release before encoding 17 wrote such a key,
// so deleting one that is not there changes no replica's state.
func (t *txn) delMessage(a Address, folderID uint64, uid uint32) error {
	t.logMessage(a, folderID, uid)
	if err := t.del(pop3UIDLKey(a, folderID, uid)); err != nil {
		return err
	}
	return t.del(messageKey(a, folderID, uid))
}

// forgetChanges empties the change log, for a write of many messages that
// does not go through putMessage or delMessage (a mailbox's removal).
func (t *txn) forgetChanges() {
	if t.changes != nil {
		t.changes.reset(t.index)
	}
}

func (t *txn) logMessage(a Address, folderID uint64, uid uint32) {
	if t.changes != nil {
		t.changes.record(messagePrefix(a, folderID), t.index, uid)
	}
}

// pointDeleteLimit is how many keys under a prefix delPrefix deletes one
// by one before it writes one range tombstone instead. Range tombstones
// in a memtable are re-fragmented on the next read after each new one,
// so many of them (a bulk deprovisioning) slow every apply until a flush;
// point tombstones cost nothing to later reads. Above the limit the one
// range tombstone is cheaper than the keys it replaces, and such removals
// are too slow to come in numbers.
const pointDeleteLimit = 10000

// delPrefix deletes every key under p.
func (t *txn) delPrefix(p []byte) error {
	keys, err := t.keysUnder(p, pointDeleteLimit)
	if err != nil {
		return err
	}
	return t.delKeys(p, keys)
}

// keysUnder returns the keys under p, or nil when there are more than
// limit.
func (t *txn) keysUnder(p []byte, limit int) ([][]byte, error) {
	it, err := t.b.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	keys := [][]byte{}
	for ok := it.First(); ok; ok = it.Next() {
		if len(keys) == limit {
			keys = nil
			break
		}
		keys = append(keys, slices.Clone(it.Key()))
	}
	return keys, it.Close()
}

// delKeys deletes keys, all under p, or everything under p when keys is
// nil (too many to list).
func (t *txn) delKeys(p []byte, keys [][]byte) error {
	t.wrote(nil)
	if keys == nil {
		return t.b.DeleteRange(p, prefixEnd(p), nil)
	}
	for _, k := range keys {
		if err := t.b.Delete(k, nil); err != nil {
			return err
		}
	}
	return nil
}
