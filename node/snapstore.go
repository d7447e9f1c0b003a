package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// Raft snapshots without copies of the state. The FSM's state is durable
// on its own (package fsm), so the snapshot raft takes every few minutes
// to compact its log needs no copy of it: Persist writes a marker naming
// the index it covers, which State.Sync has made durable first. Copying the
// whole state each time would cost I/O in proportion to every mailbox and
// message the cluster holds, again and again.
//
// The state is streamed only when a snapshot is read: raft sends one to a
// follower too far behind for the log, and a node whose state is older
// than its newest snapshot would install one. Open then writes a fresh
// view of the state to a temporary file (raft sends a snapshot's size
// before its bytes) and hands that out with the marker's metadata.
//
// Invariants:
//   - The view is at or after the marker's index: the state only moves
//     forward, and Open refuses (ErrStateBehindSnapshot) a state that is
//     behind the marker, which only a lost state directory can cause.
//     The marker's index is the state's applied index, which can be
//     below raft's index for the snapshot: raft counts barrier and no-op
//     entries as applied but never hands them to the state, so the
//     entries between the two change nothing.
//   - A receiver that installs a view taken after the marker's index skips
//     the entries in between that the view already holds: applying is
//     idempotent by raft index (fsm.State.ApplyBatch).
//   - Snapshots received from a leader are real streams and are stored as
//     they came; only local ones are markers.

// lazyMagic starts a marker snapshot; an 8-byte big-endian applied index
// follows.
const lazyMagic = "POWERMAIL-SNAPSHOT-MARKER v1\n"

// ErrStateBehindSnapshot reports a state directory older than the newest
// raft snapshot, which holds no copy of the state to catch up from.
var ErrStateBehindSnapshot = errors.New("the state is older than the newest raft snapshot")

// snapshotStore is raft's file snapshot store with markers for local
// snapshots.
type snapshotStore struct {
	*raft.FileSnapshotStore
	state   *fsm.State
	dir     string
	streams string         // temporary views of the state being sent
	space   *snapshotSpace // nil: streams are not held to a reserve (snapspace.go)
	// creating serialises Create, so that the partial directory a
	// failed one left is told from others' (removeNewTemps).
	creating sync.Mutex
}

func newSnapshotStore(dir string, state *fsm.State, hl hclog.Logger, space *snapshotSpace) (*snapshotStore, error) {
	files, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hl)
	if err != nil {
		return nil, err
	}
	if err := removeTempSnapshots(dir); err != nil {
		return nil, err
	}
	streams := filepath.Join(dir, "streams")
	// Views left by a crash mid-send are of no further use.
	if err := os.RemoveAll(streams); err != nil {
		return nil, fmt.Errorf("clear %s: %w", streams, err)
	}
	if err := os.MkdirAll(streams, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", streams, err)
	}
	return &snapshotStore{FileSnapshotStore: files, state: state, dir: dir, streams: streams, space: space}, nil
}

// Create starts a snapshot: a local marker, or a stream received from
// the leader, which is held to the free-space reserve.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	s.creating.Lock()
	defer s.creating.Unlock()
	before, err := s.tempSnapshots()
	if err != nil {
		return nil, err
	}
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, errors.Join(err, s.removeNewTemps(before))
	}
	tmp := filepath.Join(s.dir, "snapshots", sink.ID()+".tmp")
	return &spaceSink{SnapshotSink: sink, tmp: tmp, sw: spaceWriter{w: sink, sp: s.space}}, nil
}

// tempSnapshots is the set of partial snapshot directories in the store.
func (s *snapshotStore) tempSnapshots() (map[string]bool, error) {
	tmps, err := filepath.Glob(filepath.Join(s.dir, "snapshots", "*.tmp"))
	if err != nil {
		return nil, fmt.Errorf("list partial snapshots: %w", err)
	}
	set := make(map[string]bool, len(tmps))
	for _, t := range tmps {
		set[t] = true
	}
	return set, nil
}

// removeNewTemps removes the partial snapshot directories that are not
// in before: what a Create that failed part way left (raft's file
// store leaves its directory when writing the metadata or opening the
// state file fails). Creates are serialised, so no other Create can
// have made one meanwhile; sinks that finish or cancel only remove
// theirs.
func (s *snapshotStore) removeNewTemps(before map[string]bool) error {
	now, err := s.tempSnapshots()
	if err != nil {
		return err
	}
	var errs []error
	for t := range now {
		if !before[t] {
			if err := os.RemoveAll(t); err != nil {
				errs = append(errs, fmt.Errorf("remove partial snapshot: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// writeMarker is a local snapshot's content: the magic and index.
func writeMarker(w io.Writer, index uint64) error {
	buf := binary.BigEndian.AppendUint64([]byte(lazyMagic), index)
	_, err := w.Write(buf)
	return err
}

// Open returns snapshot id's metadata and content. A marker is replaced
// by a view of the current state.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(rc)
	index, isMarker, err := readMarker(br)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if !isMarker {
		s.space.measured(meta.Size) // raft may be about to install it
		return meta, readCloser{br, rc}, nil
	}
	rc.Close()
	return s.stream(meta, index)
}

// readMarker reads a marker's index from the start of a snapshot, if it
// is a marker; otherwise nothing of br is consumed.
func readMarker(br *bufio.Reader) (uint64, bool, error) {
	if head, _ := br.Peek(len(lazyMagic)); string(head) != lazyMagic {
		return 0, false, nil
	}
	var buf [len(lazyMagic) + 8]byte
	if _, err := io.ReadFull(br, buf[:]); err != nil {
		return 0, true, fmt.Errorf("short snapshot marker: %w", err)
	}
	return binary.BigEndian.Uint64(buf[len(lazyMagic):]), true, nil
}

// markerIndex is the state's index that snapshot id's marker covers, or
// ok false if id is not a marker (a stream received from a leader).
func (s *snapshotStore) markerIndex(id string) (index uint64, ok bool, err error) {
	_, rc, err := s.FileSnapshotStore.Open(id)
	if err != nil {
		return 0, false, err
	}
	defer rc.Close()
	return readMarker(bufio.NewReader(rc))
}

// stream writes a view of the state, which must have reached covered, the
// marker's index, to a temporary file and returns it under meta, with
// meta's size corrected.
func (s *snapshotStore) stream(meta *raft.SnapshotMeta, covered uint64) (*raft.SnapshotMeta, io.ReadCloser, error) {
	if applied := s.state.Applied(); applied < covered {
		return nil, nil, fmt.Errorf("%w: snapshot %s covers index %d, the state is at %d", ErrStateBehindSnapshot, meta.ID, covered, applied)
	}
	sw := &spaceWriter{sp: s.space}
	if err := sw.admit(0); err != nil { // before the view is begun
		s.space.wait()
		return nil, nil, fmt.Errorf("stream snapshot %s: %w", meta.ID, err)
	}
	snap, err := s.state.Snapshot()
	if err != nil {
		return nil, nil, err
	}
	defer snap.Release()
	f, err := os.CreateTemp(s.streams, "view-")
	if err != nil {
		return nil, nil, fmt.Errorf("stream snapshot %s: %w", meta.ID, err)
	}
	tf := &tempFile{f}
	sw.w = f
	bw := bufio.NewWriterSize(sw, 1<<20)
	n, err := snap.WriteTo(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		tf.Close()
		if errors.Is(err, ErrSnapshotNoSpace) {
			s.space.wait()
		}
		return nil, nil, fmt.Errorf("stream snapshot %s: %w", meta.ID, err)
	}
	s.space.wrote(n)
	m := *meta
	m.Size = n
	return &m, tf, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// tempFile removes itself when closed.
type tempFile struct{ *os.File }

func (t *tempFile) Close() error {
	return errors.Join(t.File.Close(), os.Remove(t.Name()))
}
