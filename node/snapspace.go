package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"powermail/fsm"
	"powermail/storage"
)

// Raft snapshots and the free-space reserve. A snapshot that is more
// than a marker (snapstore.go) is as large as the state: the leader's
// view spilled for a follower, and the stream a follower receives
// (615 MiB at a million mailboxes and forwards). Both are written to the
// raft directory, on the disk the body store and the raft log share, so
// either could fill it, after which deliveries and log writes fail. They
// are held to the body store's reserve (Config.MinFreeBytes): a write
// that would leave less than the reserve free is refused with
// ErrSnapshotNoSpace, the partial file is removed, and raft tries again
// later. A refused view fails raft's Open of the snapshot, a refused
// receive fails the InstallSnapshot RPC; hashicorp/raft 1.7.3 retries
// both (the follower's with its replication backoff, up to ~10 s; the
// Open at once, so a refused Open pauses first, snapshotRefusalPause).
//
// A follower's restore of a received stream builds a new state beside
// the old one, as large again: it reads the stream through the same
// check (spaceReader), and a refusal removes the state built so far.
//
// A marker is never refused: it is a few bytes, and it is what lets raft
// compact its log, which a disk at its reserve needs most.
//
// raft gives no size before a stream, so the first check of one asks
// for room for the last stream this store wrote, or the size a refused
// one had reached if that is more (sizeHint): after one refusal, the
// retries are refused before writing anything, rather than each filling
// the room again. That size is a minute's hint (snapshotHintMemory), not
// a verdict: the state shrinks when mailboxes go, and a hint kept for
// ever would refuse every stream that fits now and so never measure
// again. Once it is a minute old a stream is tried for real, which
// either fits or measures the state anew.

// ErrSnapshotNoSpace reports a raft snapshot not written because it
// would cut into the free-space reserve.
var ErrSnapshotNoSpace = errors.New("no room for the raft snapshot above the free-space reserve")

// snapshotSpaceRecheck is how many bytes of a stream may be written
// between two readings of the free space; in between, what was written
// is subtracted from the last reading.
const snapshotSpaceRecheck = 16 << 20

// snapshotRefusalPause is how long a refused Open waits before it fails:
// raft asks again at once (every CommitTimeout) otherwise.
const snapshotRefusalPause = time.Second

// snapshotWarnEvery spaces the warnings of refusals that go on.
const snapshotWarnEvery = time.Minute

// snapshotHintMemory is how long the size a stream reached asks room
// of the next streams: a refusal by that size alone measures nothing,
// so at most one stream a minute fills the room to learn it again.
const snapshotHintMemory = time.Minute

// snapshotSpace holds snapshot streams to the free-space reserve.
type snapshotSpace struct {
	reserve int64                  // bytes that must stay free; <= 0: none
	free    func() (uint64, error) // free bytes of the raft directory's filesystem
	log     *slog.Logger
	ctx     context.Context    // ends when the node closes: cuts a pause short
	pause   time.Duration      // of a refused Open
	refused prometheus.Counter // refusals; may be nil
	now     func() time.Time   // time.Now if nil; tests move it on

	mu       sync.Mutex
	sizeHint int64     // the last stream written whole, or more if one was refused since
	hintAt   time.Time // when sizeHint was measured
	warned   time.Time // last warning of a refusal
}

// on reports whether streams are held to a reserve.
func (sp *snapshotSpace) on() bool { return sp != nil && sp.reserve > 0 }

// read is the free space of the raft directory's filesystem.
func (sp *snapshotSpace) read() (int64, error) {
	free, err := sp.free()
	if err != nil {
		return 0, fmt.Errorf("free space for a raft snapshot: %w", err)
	}
	return int64(min(free, 1<<62)), nil
}

// clock is the time now.
func (sp *snapshotSpace) clock() time.Time {
	if sp.now == nil {
		return time.Now()
	}
	return sp.now()
}

// refuse notes a refusal, with avail bytes free, of a stream that needs
// n bytes and has reached reached (written, and the write refused), and
// warns (at most once per snapshotWarnEvery). The size reached is a
// measure of the state that the next streams ask room for; n may be
// the hint only, which measures nothing and so is not kept again.
func (sp *snapshotSpace) refuse(avail, n, reached int64) error {
	sp.mu.Lock()
	now := sp.clock()
	if now.Sub(sp.hintAt) >= snapshotHintMemory {
		sp.sizeHint = 0
	}
	if reached > sp.sizeHint {
		sp.sizeHint, sp.hintAt = reached, now
	}
	warn := now.Sub(sp.warned) >= snapshotWarnEvery
	if warn {
		sp.warned = now
	}
	sp.mu.Unlock()
	if sp.refused != nil {
		sp.refused.Inc()
	}
	if warn && sp.log != nil {
		sp.log.Warn("raft snapshot refused: it would cut into the free-space reserve; raft tries again later",
			"free_bytes", avail, "reserve_bytes", sp.reserve, "snapshot_bytes_at_least", n)
	}
	return fmt.Errorf("%w: %d bytes free, %d must stay free, the snapshot is at least %d bytes", ErrSnapshotNoSpace, avail, sp.reserve, n)
}

// hint is the least room a new stream asks for: the size measured
// last, for snapshotHintMemory.
func (sp *snapshotSpace) hint() int64 {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.clock().Sub(sp.hintAt) >= snapshotHintMemory {
		return 0
	}
	return sp.sizeHint
}

// wrote records a stream of n bytes written whole: the state's size
// now, which replaces what earlier streams said (the state can shrink).
func (sp *snapshotSpace) wrote(n int64) {
	if sp == nil {
		return
	}
	sp.mu.Lock()
	sp.sizeHint, sp.hintAt = n, sp.clock()
	sp.mu.Unlock()
}

// measured notes the size of a stored stream about to be read (raft
// opens it to install it): a restore asks room for it before it starts
// (spaceReader), also when the copy was received more than
// snapshotHintMemory ago, or before this start. A smaller size does not
// replace a larger one still remembered.
func (sp *snapshotSpace) measured(n int64) {
	if sp == nil {
		return
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	now := sp.clock()
	if n >= sp.sizeHint || now.Sub(sp.hintAt) >= snapshotHintMemory {
		sp.sizeHint, sp.hintAt = n, now
	}
}

// wait pauses after a refused Open, until the node closes at most.
func (sp *snapshotSpace) wait() {
	if sp == nil || sp.pause <= 0 {
		return
	}
	t := time.NewTimer(sp.pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-sp.ctx.Done():
	}
}

// startReserveShare is the share of the reserve (1/startReserveShare)
// an install at start leaves free. What a restore counts is the stream;
// pebble's log beside the table it flushes from it takes more for a
// while (a memtable, 64 MiB by default, written out before its log
// goes: a third of the default reserve, 85 MiB, holds it and a recheck's
// worth), and a write to that log failing for want of room is a panic in
// pebble, not an error: on a disk filled to its last byte the node would
// crash at each start, where refused it says why.
const startReserveShare = 3

// atStart is sp for the install a node must make at start: held to
// 1/startReserveShare of the reserve, with the size hint sp has (the
// stream's, which opening it measured). Nil or off, it is sp.
func (sp *snapshotSpace) atStart() *snapshotSpace {
	if !sp.on() {
		return sp
	}
	st := &snapshotSpace{reserve: max(sp.reserve/startReserveShare, 1), free: sp.free, log: sp.log,
		ctx: sp.ctx, refused: sp.refused, now: sp.now}
	st.measured(sp.hint())
	return st
}

// spaceWriter writes a stream through w while the reserve allows.
type spaceWriter struct {
	w       io.Writer
	sp      *snapshotSpace
	written int64
	avail   int64 // free bytes at the last reading, less what was written since
	next    int64 // written at which the free space is read again
	checked bool
	reading bool // a restore's reads (spaceReader): its refusals measure no stream
}

func (sw *spaceWriter) Write(p []byte) (int, error) {
	if err := sw.admit(int64(len(p))); err != nil {
		return 0, err
	}
	n, err := sw.w.Write(p)
	sw.advance(int64(n))
	return n, err
}

// advance counts n bytes written.
func (sw *spaceWriter) advance(n int64) {
	sw.written += n
	sw.avail -= n
}

// admit checks that n more bytes leave the reserve free, reading the
// free space before the first write and every snapshotSpaceRecheck
// bytes. The first check asks room for the size hint too.
func (sw *spaceWriter) admit(n int64) error {
	sp := sw.sp
	if !sp.on() {
		return nil
	}
	reached := sw.written + n
	want := reached
	if sw.reading {
		reached = 0 // a read asks for more than the stream may hold
	}
	if !sw.checked || want >= sw.next || sw.avail-n < sp.reserve {
		avail, err := sp.read()
		if err != nil {
			return err
		}
		if !sw.checked {
			want = max(want, sp.hint())
		}
		sw.avail, sw.next, sw.checked = avail, sw.written+snapshotSpaceRecheck, true
		if avail-(want-sw.written) < sp.reserve {
			return sp.refuse(avail, want, reached)
		}
	}
	if sw.avail-n < sp.reserve {
		return sp.refuse(sw.avail, want, reached)
	}
	return nil
}

// spaceReader reads a snapshot being installed while the reserve
// allows: the restore builds a new state beside the old one
// (fsm.State.Restore), on the disk the raft directory shares, about as
// large as the stream. Each byte read is counted as a byte the new state
// will take (its log takes each batch whole before it is compacted into
// tables), and the free space is read again every snapshotSpaceRecheck
// bytes, as for a stream written. The first read asks room for the
// stream's size (measured, or the size hint).
type spaceReader struct {
	r       io.Reader
	sw      spaceWriter
	refused error // the refusal, once a read was refused
}

// spaceReadChunk is the most a restore's read asks room for: the
// restore asks for more (its buffer) than a small stream holds.
const spaceReadChunk = 64 << 10

func (sr *spaceReader) Read(p []byte) (int, error) {
	p = p[:min(len(p), spaceReadChunk)]
	if err := sr.sw.admit(int64(len(p))); err != nil {
		sr.refused = err
		return 0, err
	}
	n, err := sr.r.Read(p)
	sr.sw.advance(int64(n))
	return n, err
}

// restore installs the snapshot read from r into state, held to the
// reserve. A refusal fails with ErrSnapshotNoSpace (the state's own
// error would call the cut stream a bad snapshot); the state built so
// far is removed, and the old state stays (fsm.State.Restore).
func (sp *snapshotSpace) restore(state *fsm.State, r io.Reader) error {
	sr := &spaceReader{r: r, sw: spaceWriter{sp: sp, reading: true}}
	err := state.Restore(sr)
	if err != nil && sr.refused != nil {
		return sr.refused
	}
	return err
}

// spaceSink is a snapshot being written into the file store: a marker
// passes, a stream is held to the reserve. A refused write cancels the
// snapshot, removing what was written.
type spaceSink struct {
	raft.SnapshotSink
	tmp    string // the sink's directory in the file store
	sw     spaceWriter
	marker bool
}

func (s *spaceSink) Write(p []byte) (int, error) {
	if s.sw.written == 0 && !s.marker && bytes.HasPrefix(p, []byte(lazyMagic)) && len(p) <= len(lazyMagic)+8 {
		s.marker = true
	}
	if s.marker {
		return s.SnapshotSink.Write(p)
	}
	n, err := s.sw.Write(p)
	if errors.Is(err, ErrSnapshotNoSpace) {
		s.Cancel()
	}
	return n, err
}

// Cancel removes the partial snapshot, also when raft's sink fails to
// (its Cancel gives up if flushing the buffer fails). raft's Cancel
// flushes and fsyncs the file before removing it, which would write out
// the whole partial stream just when the disk is nearly full; the files
// are emptied first, so the kernel drops their unwritten pages and the
// sync has at most the sink's last buffer (4 KiB) to write. raft's sink
// must still be cancelled: only it can close its file. (If its flush
// fails, on a disk really full, it gives up without closing the file,
// which stays open until the node stops; emptied, it holds no space.)
func (s *spaceSink) Cancel() error {
	emptyFiles(s.tmp)
	err := s.SnapshotSink.Cancel()
	if rerr := os.RemoveAll(s.tmp); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

// Close finishes the snapshot. If that fails before raft's sink moved
// it into place (writing its metadata, the rename), raft leaves the
// partial directory; it is removed here. After the move it is gone, and
// the removal does nothing.
func (s *spaceSink) Close() error {
	err := s.SnapshotSink.Close()
	if err != nil {
		if rerr := os.RemoveAll(s.tmp); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	if !s.marker {
		s.sw.sp.wrote(s.sw.written)
	}
	return nil
}

// emptyFiles truncates the files in dir, which is about to be removed.
// It is best effort: a file left whole is removed all the same, only
// after raft's sink synced it.
func emptyFiles(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			_ = os.Truncate(filepath.Join(dir, e.Name()), 0)
		}
	}
}

// removeTempSnapshots removes the partial snapshots a crash left in the
// file store's directory (raft only warns of them).
func removeTempSnapshots(dir string) error {
	tmps, err := filepath.Glob(filepath.Join(dir, "snapshots", "*.tmp"))
	if err != nil {
		return err
	}
	for _, t := range tmps {
		if err := os.RemoveAll(t); err != nil {
			return fmt.Errorf("remove partial snapshot: %w", err)
		}
	}
	return nil
}

// newSnapshotSpace holds the snapshots in dir to the body store's
// reserve, reading the free space through the body store's filesystem
// (Config.BodyFS): both are in the data directory.
func newSnapshotSpace(ctx context.Context, cfg Config, dir string, log *slog.Logger, refused prometheus.Counter) *snapshotSpace {
	reserve := cfg.MinFreeBytes
	if reserve == 0 {
		reserve = storage.DefaultMinFreeBytes
	}
	fs := cfg.BodyFS
	if fs == nil {
		fs = vfs.Default
	}
	free := func() (uint64, error) {
		du, err := fs.GetDiskUsage(dir)
		return du.AvailBytes, err
	}
	return &snapshotSpace{reserve: reserve, free: free, log: log, ctx: ctx, pause: snapshotRefusalPause, refused: refused}
}
