package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

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

// budgetFS reports as free space a budget less what the snapshot files
// under dir take: a disk that the copies of received snapshots fill.
type budgetFS struct {
	vfs.FS
	dir    string
	budget *atomic.Int64
}

func (f budgetFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	var used int64
	filepath.WalkDir(f.dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				used += info.Size()
			}
		}
		return nil
	})
	du.AvailBytes = uint64(max(f.budget.Load()-used, 0))
	return du, err
}

// A follower with room for the leader's snapshot but not for the state
// it would build from it beside its own receives the copy and refuses
// to install it: no new state is left, and the state stays as it was.
// raft sends again, and the follower installs once room returns.
func TestFollowerWithoutRoomToRestoreInstallsWhenRoomReturns(t *testing.T) {
	c, n3, _, budget, size := followerRefusingRestore(t)
	budget.Store(restoreReserve + 10*size)
	installsAndServes(t, c, n3)
}

// A follower that refused to install a snapshot for want of room keeps
// raft's copy of it, and restarted it must install that copy before it
// can run (the log before it is gone). At start the install may use the
// reserve, which is kept for such work: a node up at its reserve serves
// reads and refuses body writes, where one that did not start serves
// nothing. It used to refuse to start.
func TestRestartAtItsReserveInstallsTheReceivedSnapshot(t *testing.T) {
	c, n3, cfg, _, _ := followerRefusingRestore(t)
	list, err := n3.snaps.List()
	if err != nil || len(list) == 0 || list[0].Index <= n3.State().Applied() {
		t.Fatalf("n3 holds no snapshot ahead of its state: %+v, %v", list, err)
	}
	cfg.ClusterAddr, cfg.AdminAddr = n3.ClusterAddr(), n3.AdminAddr()
	if err := n3.Close(); err != nil {
		t.Fatal(err)
	}
	n3 = c.startWith(cfg) // the same disk, still short of room
	if _, err := n3.State().Mailbox("u99@example.com"); err != nil {
		t.Fatalf("n3 started without the snapshot it held: %v", err)
	}
}

// The start-time install may use the reserve, not the whole disk: with
// less room than the state it builds takes, the install would fill the
// disk to its last byte, and a write pebble's log fails there is a
// panic, not an error, which a supervisor repeats at each start. The
// node refuses to start instead, says why, and keeps its state as it
// was.
func TestRestartWithoutRoomForTheSnapshotEvenInTheReserveRefuses(t *testing.T) {
	c, n3, cfg, budget, size := followerRefusingRestore(t)
	cfg.ClusterAddr, cfg.AdminAddr = n3.ClusterAddr(), n3.AdminAddr()
	if err := n3.Close(); err != nil {
		t.Fatal(err)
	}
	delete(c.nodes, "n3")
	budget.Store(size + size/2) // raft's copy takes size: half the state's room is free
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := New(ctx, cfg)
	if err == nil {
		n.Close()
		t.Fatal("n3 started, installing a snapshot into less room than it takes")
	}
	if !errors.Is(err, ErrSnapshotNoSpace) {
		t.Errorf("start without room: %v, want %v", err, ErrSnapshotNoSpace)
	}
	if dirs := stateDirs(t, filepath.Join(cfg.DataDir, "fsm")); len(dirs) != 1 {
		t.Errorf("n3's state directories after the refused start: %v; want its own only", dirs)
	}
}

// restoreReserve is the free-space reserve of followerRefusingRestore's
// follower.
const restoreReserve = 1 << 20

// followerRefusingRestore starts a compacted pair and a third node whose
// disk has room above its reserve for the leader's snapshot and half as
// much again, not for the state built from it as well, and returns once
// it has refused to install it; cfg is its configuration, budget sets
// its room, size is the snapshot's.
func followerRefusingRestore(t *testing.T) (c *testCluster, n3 *Node, cfg Config, budget *atomic.Int64, size int64) {
	c = &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft()}
	t.Cleanup(c.closeAll)
	l := c.compactedPair()
	list, err := l.snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("leader's snapshots %+v, %v", list, err)
	}
	meta, rc, err := l.snaps.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	size = meta.Size
	budget = new(atomic.Int64)
	budget.Store(restoreReserve + size + size/2)
	cfg = c.config("n3", false, l.AdminAddr())
	cfg.MinFreeBytes = restoreReserve
	cfg.BodyFS = budgetFS{FS: vfs.Default, dir: filepath.Join(cfg.DataDir, "raft", "snapshots"), budget: budget}
	n3 = c.startWith(cfg)
	waitFor(t, 10*time.Second, "n3 to refuse the snapshot", func() bool { return testutilCounter(n3.metrics.snapsRefused) > 0 })
	time.Sleep(time.Second) // raft tries again meanwhile
	if _, err := n3.State().Mailbox("u99@example.com"); err == nil || testutilCounter(n3.metrics.restores) != 0 {
		t.Fatalf("n3 installed a snapshot it had no room to build (restores %v)", testutilCounter(n3.metrics.restores))
	}
	if dirs := stateDirs(t, filepath.Join(cfg.DataDir, "fsm")); len(dirs) != 1 {
		t.Fatalf("n3's state directories after the refusal: %v; want its own only", dirs)
	}
	return c, n3, cfg, budget, size
}
