package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// spaceStore is a snapshot store on a real state and directory whose
// filesystem reports free as its free space; warnings go to logs.
func spaceStore(t *testing.T, reserve int64, free *atomic.Int64, logs *bytes.Buffer) (*snapshotStore, string) {
	t.Helper()
	return spaceStoreIn(t, t.TempDir(), reserve, free, logs)
}

// spaceStoreIn is spaceStore with the snapshot store in dir.
func spaceStoreIn(t *testing.T, dir string, reserve int64, free *atomic.Int64, logs *bytes.Buffer) (*snapshotStore, string) {
	t.Helper()
	st, err := fsm.Open(t.TempDir(), fsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sp := &snapshotSpace{reserve: reserve, ctx: context.Background(),
		free: func() (uint64, error) { return uint64(free.Load()), nil },
		log:  slog.New(slog.NewTextHandler(logs, nil))}
	s, err := newSnapshotStore(dir, st, newRaftLogger(slog.New(slog.DiscardHandler)), sp)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// receive writes content into a new snapshot at index as raft's
// InstallSnapshot does (io.Copy, Cancel on a failed copy, then Close).
func receive(s *snapshotStore, index uint64, content []byte) error {
	sink, err := s.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		return err
	}
	if _, err := io.Copy(sink, bytes.NewReader(content)); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

// partials lists what a snapshot store holds besides finished snapshots.
func partials(t *testing.T, dir string) []string {
	t.Helper()
	tmps, err := filepath.Glob(filepath.Join(dir, "snapshots", "*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	views, _ := os.ReadDir(filepath.Join(dir, "streams"))
	for _, v := range views {
		tmps = append(tmps, v.Name())
	}
	return tmps
}

// installsAndServes waits for n3 to install the snapshot that holds
// u99@, then checks that no partial snapshot is left in its raft
// directory and that a write through it reaches every node.
func installsAndServes(t *testing.T, c *testCluster, n3 *Node) {
	t.Helper()
	waitFor(t, 20*time.Second, "n3 to install the snapshot", func() bool {
		_, err := n3.State().Mailbox("u99@example.com")
		return err == nil && testutilCounter(n3.metrics.restores) >= 1
	})
	if left := partials(t, filepath.Join(n3.cfg.DataDir, "raft")); len(left) != 0 {
		t.Fatalf("partial snapshots left on n3: %v", left)
	}
	mustApply(t, n3, addMailbox("via-n3@example.com"))
	c.readEverywhere("via-n3@example.com")
}

// A snapshot stream received from the leader is refused once writing
// it would leave less than the reserve free: the partial snapshot is
// removed, the earlier one stays whole, and the refusal is a wrapped
// ErrSnapshotNoSpace with a warning naming the free space and the
// reserve. A retry is refused before it writes anything; a marker
// (a local snapshot) passes even at a full disk; and with room again
// the stream is stored.
func TestSnapshotStreamKeepsTheReserve(t *testing.T) {
	const reserve, size = 4 << 20, 1 << 20
	var free atomic.Int64
	var logs bytes.Buffer
	free.Store(1 << 40)
	s, dir := spaceStore(t, reserve, &free, &logs)
	first := bytes.Repeat([]byte("first snapshot "), size/15)
	if err := receive(s, 10, first); err != nil {
		t.Fatalf("a stream with room: %v", err)
	}

	free.Store(reserve + size/2)
	err := receive(s, 20, bytes.Repeat([]byte("second "), size/7))
	if !errors.Is(err, ErrSnapshotNoSpace) {
		t.Fatalf("a stream larger than the room above the reserve: %v, want ErrSnapshotNoSpace", err)
	}
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial snapshot left after the refusal: %v", left)
	}
	for _, want := range []string{"free_bytes=" + i64toa(reserve+size/2), "reserve_bytes=" + i64toa(reserve)} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("warning %q lacks %s", logs.String(), want)
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Index != 10 {
		t.Fatalf("snapshots after the refusal: %+v, %v; want the first only", list, err)
	}
	_, rc, err := s.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, first) {
		t.Fatalf("the earlier snapshot reads %d bytes (%v), want its %d", len(got), err, len(first))
	}

	// The retry starts with room for what was refused, not for its first
	// write: it is refused before writing a byte.
	free.Store(reserve + size/4)
	sink, err := s.Create(raft.SnapshotVersionMax, 20, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sink.Write(make([]byte, 4096)); !errors.Is(err, ErrSnapshotNoSpace) || n != 0 {
		t.Fatalf("the retry's first 4 KiB: %d written, %v; want refused", n, err)
	}
	sink.Cancel()
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial snapshot left after the retry: %v", left)
	}

	free.Store(0)
	sink, err = s.Create(raft.SnapshotVersionMax, 30, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(sink, 30); err != nil {
		t.Fatalf("a marker on a full disk: %v", err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}

	free.Store(reserve + 4*size)
	if err := receive(s, 40, bytes.Repeat([]byte("fourth "), size/7)); err != nil {
		t.Fatalf("a stream with room again: %v", err)
	}
	if list, _ := s.List(); len(list) != 2 || list[0].Index != 40 {
		t.Fatalf("snapshots: %+v, want 40 newest of two", list)
	}
}

// The leader's view of its state, spilled to a file to be sent, is held
// to the reserve as well: Open fails with ErrSnapshotNoSpace and leaves
// no file.
func TestSnapshotViewKeepsTheReserve(t *testing.T) {
	const reserve = 4 << 20
	var free atomic.Int64
	var logs bytes.Buffer
	free.Store(1 << 40)
	s, dir := spaceStore(t, reserve, &free, &logs)
	sink, err := s.Create(raft.SnapshotVersionMax, 1, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeMarker(sink, 0); err != nil || sink.Close() != nil {
		t.Fatal(err)
	}
	id := sink.ID()
	_, rc, err := s.Open(id)
	if err != nil {
		t.Fatalf("a view with room: %v", err)
	}
	rc.Close()

	free.Store(reserve - 1)
	if _, rc, err := s.Open(id); !errors.Is(err, ErrSnapshotNoSpace) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("a view with no room above the reserve: %v, want ErrSnapshotNoSpace", err)
	}
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial view left after the refusal: %v", left)
	}
	if !strings.Contains(logs.String(), "reserve_bytes="+i64toa(reserve)) {
		t.Fatalf("no warning naming the reserve: %q", logs.String())
	}
}

func i64toa(n int64) string { return strconv.FormatInt(n, 10) }

// A follower too far behind for the log, on a disk at its reserve, does
// not install the leader's snapshot (raft's copy of it would fill the
// disk): it refuses, keeps nothing partial, and installs it once room
// returns, raft retrying on its own.
func TestFollowerAtItsReserveInstallsWhenRoomReturns(t *testing.T) {
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft()}
	t.Cleanup(c.closeAll)
	l := c.compactedPair()
	full := new(atomic.Bool)
	full.Store(true)
	cfg := c.config("n3", false, l.AdminAddr())
	cfg.MinFreeBytes = 1 << 20
	cfg.BodyFS = fillableFS{FS: vfs.Default, full: full}
	n3 := c.startWith(cfg)
	waitFor(t, 10*time.Second, "n3 to refuse the snapshot", func() bool { return testutilCounter(n3.metrics.snapsRefused) > 0 })
	time.Sleep(time.Second) // raft tries again meanwhile
	if _, err := n3.State().Mailbox("u99@example.com"); err == nil || testutilCounter(n3.metrics.restores) != 0 {
		t.Fatalf("n3 installed a snapshot on a full disk (restores %v)", testutilCounter(n3.metrics.restores))
	}
	if list, err := n3.snaps.List(); err != nil || len(list) != 0 {
		t.Fatalf("n3 keeps snapshots %+v, %v; want none", list, err)
	}
	full.Store(false)
	installsAndServes(t, c, n3)
}

// A leader at its reserve spills no view of its state for a follower
// too far behind: its Open of the snapshot is refused, paced by
// snapshotRefusalPause (raft would otherwise ask again every
// CommitTimeout), and the follower gets the snapshot once room returns.
func TestLeaderAtItsReserveSendsTheSnapshotWhenRoomReturns(t *testing.T) {
	var mu sync.Mutex
	full := map[string]*atomic.Bool{}
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft(), tweak: func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		full[cfg.ID] = new(atomic.Bool)
		cfg.MinFreeBytes = 1 << 20
		cfg.BodyFS = fillableFS{FS: vfs.Default, full: full[cfg.ID]}
	}}
	t.Cleanup(c.closeAll)
	l := c.compactedPair()
	mu.Lock()
	full[l.ID()].Store(true)
	mu.Unlock()
	n3 := c.start("n3", false, l.AdminAddr())
	waitFor(t, 10*time.Second, "the leader to refuse its view", func() bool { return testutilCounter(l.metrics.snapsRefused) > 0 })
	start, before := time.Now(), testutilCounter(l.metrics.snapsRefused)
	time.Sleep(3 * time.Second)
	tries := testutilCounter(l.metrics.snapsRefused) - before
	t.Logf("%v refusals in %v", tries, time.Since(start).Round(time.Millisecond))
	if tries > 5 {
		t.Fatalf("%v refused views in 3 s: raft's retries are not paced", tries)
	}
	if _, err := n3.State().Mailbox("u99@example.com"); err == nil || testutilCounter(n3.metrics.restores) != 0 {
		t.Fatal("n3 installed a snapshot from a leader at its reserve")
	}
	if left := partials(t, filepath.Join(l.cfg.DataDir, "raft")); len(left) != 0 {
		t.Fatalf("partial views left on the leader: %v", left)
	}
	mu.Lock()
	full[l.ID()].Store(false)
	mu.Unlock()
	waitFor(t, 10*time.Second, "n3 to install the snapshot", func() bool {
		_, err := n3.State().Mailbox("u99@example.com")
		return err == nil && testutilCounter(n3.metrics.restores) >= 1
	})
}

// The size a stream reached is a hint for the next one, not a verdict:
// after the state shrank (mailboxes deleted), a stream that fits above
// the reserve is stored, though the last one would not fit. Until the
// hint is a minute old a retry is still refused before it writes (no
// retry storm); then a real try measures the state again.
func TestSnapshotSizeHintForgottenAfterTheStateShrank(t *testing.T) {
	const reserve, size = 4 << 20, 8 << 20
	var free, ahead atomic.Int64
	var logs bytes.Buffer
	free.Store(1 << 40)
	s, dir := spaceStore(t, reserve, &free, &logs)
	s.space.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	if err := receive(s, 10, bytes.Repeat([]byte("x"), size)); err != nil {
		t.Fatalf("a stream with room: %v", err)
	}

	free.Store(reserve + size/4)
	small := bytes.Repeat([]byte("y"), size/8) // the state after deletions
	if err := receive(s, 20, small); !errors.Is(err, ErrSnapshotNoSpace) {
		t.Fatalf("a stream right after one of %d bytes, %d free above the reserve: %v; want refused on the hint", size, size/4, err)
	}
	ahead.Store(int64(snapshotHintMemory + time.Second))
	if err := receive(s, 20, small); err != nil {
		t.Fatalf("a stream of %d bytes with %d free above the reserve, a minute on: %v", len(small), size/4, err)
	}
	if list, err := s.List(); err != nil || len(list) != 2 || list[0].Index != 20 {
		t.Fatalf("snapshots: %+v, %v; want 20 newest of two", list, err)
	}
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial snapshots left: %v", left)
	}

	// A stream refused part way tells the size it reached: a retry within
	// the minute is refused before it writes, and that refusal, which
	// measured nothing, does not make the size younger.
	measured := snapshotHintMemory + time.Second + snapshotHintMemory + time.Second
	ahead.Store(int64(measured))
	free.Store(reserve + size/16)
	if err := receive(s, 30, small); !errors.Is(err, ErrSnapshotNoSpace) {
		t.Fatalf("a stream larger than the room: %v", err)
	}
	ahead.Store(int64(measured + 30*time.Second))
	free.Store(reserve + size/32)
	sink, err := s.Create(raft.SnapshotVersionMax, 30, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sink.Write(make([]byte, 4096)); !errors.Is(err, ErrSnapshotNoSpace) || n != 0 {
		t.Fatalf("a retry within the minute: %d written, %v; want refused before writing", n, err)
	}
	sink.Cancel()
	ahead.Store(int64(measured + snapshotHintMemory + time.Second))
	if err := receive(s, 30, small[:size/64]); err != nil {
		t.Fatalf("a smaller stream a minute after the measure: %v", err)
	}
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial snapshots left: %v", left)
	}
}
