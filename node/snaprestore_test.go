package node

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
)

// stateView is the snapshot stream of a state holding n mailboxes,
// applied at index 2.
func stateView(t *testing.T, n int) []byte {
	t.Helper()
	src, err := fsm.Open(t.TempDir(), fsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	add := &fsm.MailboxAdd{}
	for i := range n {
		add.Mailboxes = append(add.Mailboxes, fsm.NewMailbox{Address: fmt.Sprintf("u%d@example.com", i)})
	}
	var entries []fsm.Entry
	for i, c := range []fsm.Command{&fsm.DomainAdd{Name: "example.com"}, add} {
		data, err := fsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, fsm.Entry{Index: uint64(i + 1), Data: data})
	}
	for _, r := range src.ApplyBatch(entries) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	var view bytes.Buffer
	if _, err := snap.WriteTo(&view); err != nil {
		t.Fatal(err)
	}
	return view.Bytes()
}

// stateDirs lists the state directories (state-N) in dir.
func stateDirs(t *testing.T, dir string) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(dir, "state-*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

// Installing a received snapshot builds a new state beside the old one,
// as large as the stream again: it is held to the reserve too. A restore
// without room for the stream is refused with ErrSnapshotNoSpace before
// the new state takes any of it, the old state stays, and the new
// state's directory is removed; with room the same snapshot installs.
func TestRestoreKeepsTheReserve(t *testing.T) {
	const reserve = 4 << 20
	var free, ahead atomic.Int64
	var logs bytes.Buffer
	free.Store(1 << 40)
	s, _ := spaceStore(t, reserve, &free, &logs)
	s.space.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	view := stateView(t, 2000)
	if err := receive(s, 2, view); err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("snapshots %+v, %v", list, err)
	}
	stateDir := t.TempDir()
	st, err := fsm.Open(stateDir, fsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &raftFSM{state: st, metrics: newMetrics(), log: slog.New(slog.DiscardHandler), space: s.space}
	restore := func() error {
		_, rc, err := s.Open(list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		return f.Restore(rc)
	}

	// Right after the copy was received, and a minute on, when the
	// store no longer remembers the copy's size: the stream's own
	// size is asked for.
	free.Store(reserve + int64(len(view))/2)
	for _, later := range []time.Duration{0, 2 * snapshotHintMemory} {
		ahead.Store(int64(later))
		err := restore()
		if !errors.Is(err, ErrSnapshotNoSpace) {
			t.Fatalf("%v on: a restore of %d bytes with half that above the reserve: %v; want ErrSnapshotNoSpace", later, len(view), err)
		}
		if st.Applied() != 0 {
			t.Fatalf("%v on: the refused restore replaced the state (applied %d)", later, st.Applied())
		}
		if dirs := stateDirs(t, stateDir); len(dirs) != 1 {
			t.Fatalf("%v on: state directories after the refusal: %v; want the old one only", later, dirs)
		}
	}

	free.Store(reserve + 4*int64(len(view)))
	if err := restore(); err != nil {
		t.Fatalf("a restore with room: %v", err)
	}
	if _, err := st.Mailbox("u1999@example.com"); err != nil || st.Applied() != 2 {
		t.Fatalf("restored state: applied %d, %v", st.Applied(), err)
	}
	if dirs := stateDirs(t, stateDir); len(dirs) != 1 {
		t.Fatalf("state directories after the restore: %v", dirs)
	}
}
