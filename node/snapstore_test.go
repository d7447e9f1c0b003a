package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"powermail/fsm"
)

// A local snapshot is a marker of a few bytes however large the state;
// reading it streams a view of the whole state, which restores elsewhere.
func TestLocalSnapshotIsAMarker(t *testing.T) {
	_, n := oneNodeWithMailboxes(t, 200)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	list, err := n.snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("snapshots %v, %v", list, err)
	}
	if list[0].Size > 64 {
		t.Fatalf("local snapshot holds %d bytes, want a marker", list[0].Size)
	}
	mustApply(t, n, addMailbox("after@example.com")) // the view may be newer than the marker

	meta, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	if err != nil || rc.Close() != nil {
		t.Fatal(err)
	}
	if int64(len(raw)) != meta.Size || meta.Size < 10_000 {
		t.Fatalf("streamed %d bytes, meta says %d", len(raw), meta.Size)
	}
	if left, _ := os.ReadDir(n.snaps.streams); len(left) != 0 {
		t.Fatalf("%d temporary views left after Close", len(left))
	}
	st, err := fsm.Open(t.TempDir(), fsm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Restore(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"u199@example.com", "after@example.com"} {
		if _, err := st.Mailbox(a); err != nil {
			t.Fatalf("restored view lacks %s: %v", a, err)
		}
	}
	if st.Applied() < meta.Index {
		t.Fatalf("view at %d, marker at %d", st.Applied(), meta.Index)
	}
}

// A node whose state directory is lost while its raft log and snapshot
// survive cannot catch up from a marker: it refuses to start, with a
// reason, rather than apply the log on an empty state.
func TestLostStateRefusesToStart(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(10 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	cfg := c.config("n1", true, "")
	n.Close()
	delete(c.nodes, "n1")
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "fsm")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n2, err := New(ctx, cfg)
	if err == nil {
		n2.Close()
		t.Fatal("started on an empty state behind its snapshot")
	}
	if !errors.Is(err, ErrStateBehindSnapshot) {
		t.Fatalf("error %v, want ErrStateBehindSnapshot", err)
	}
}

// raft counts barrier and no-op entries as applied but never hands them to
// the state, so a snapshot taken after them names an index above the
// state's. The node still starts from it, and still streams it.
func TestSnapshotEndingInABarrier(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.Queue.Interval = time.Hour })
	n := c.leader(10 * time.Second)
	mustApply(t, n, &fsm.DomainAdd{Name: "example.com"})
	cfg := c.config("n1", true, "")
	restart := func() *Node {
		c.nodes["n1"].Close()
		delete(c.nodes, "n1")
		return c.startWith(cfg)
	}
	n = restart() // a new term: a no-op entry
	c.leader(10 * time.Second)
	waitFor(t, 10*time.Second, "the member record published", func() bool {
		ms, err := n.state.Members()
		return err == nil && len(ms) == 1 && ms[0].AdminAddr == n.AdminAddr()
	})
	// A command the node proposes itself (a member record's update) can
	// land just after the barrier; the barrier is then tried again.
	for try := 0; try < 10; try++ {
		time.Sleep(200 * time.Millisecond)
		if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		if n.raft.AppliedIndex() > n.state.Applied() {
			break
		}
	}
	if n.raft.AppliedIndex() <= n.state.Applied() {
		t.Fatalf("raft applied %d, the state %d: the barrier did not pass it", n.raft.AppliedIndex(), n.state.Applied())
	}
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	list, err := n.snaps.List()
	if err != nil || len(list) == 0 || list[0].Index <= n.state.Applied() {
		t.Fatalf("snapshots %v (state at %d), %v; want one past the state", list, n.state.Applied(), err)
	}
	_, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		t.Fatalf("stream the snapshot: %v", err)
	}
	rc.Close()
	restart() // New fails if it refuses
}

// A first member that stopped between raft's bootstrap and writing its
// settings writes them at its next start, instead of keeping the defaults.
func TestUnfinishedBootstrapIsFinished(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.BootstrapSettings = nil }) // as if it stopped before
	n := c.leader(10 * time.Second)
	if stored, err := n.state.SettingsStored(); err != nil || stored {
		t.Fatalf("settings stored %v, %v; want none yet", stored, err)
	}
	cfg := c.config("n1", true, "")
	cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
	n.Close()
	delete(c.nodes, "n1")
	n = c.startWith(cfg)
	s, err := n.State().Settings()
	if err != nil || s.Replicas != 1 || s.WriteQuorum != 1 || s.CommandEncoding != fsm.NewestEncoding {
		t.Fatalf("settings after the second start: %+v, %v", s, err)
	}
}
