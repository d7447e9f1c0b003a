package node

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"
)

// longDir is a new directory whose path is n bytes long.
func longDir(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	for len(dir) < n {
		rest := n - len(dir)
		k := min(200, rest-1)
		if rest-(k+1) == 1 {
			k--
		}
		dir = filepath.Join(dir, strings.Repeat("d", k))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A snapshot whose Create fails part way, or whose Close fails before
// it is in place, leaves no partial directory behind: raft's file store
// leaves its *.tmp directory in both cases, until the next start.
func TestFailedSnapshotCreateLeavesNoPartial(t *testing.T) {
	var free atomic.Int64
	var logs bytes.Buffer
	free.Store(1 << 40)
	// Linux takes paths of up to 4095 bytes. A store at 4058 bytes can
	// make snapshots/1-10-<13-digit milliseconds>.tmp (4091 bytes), not
	// the meta.json raft then writes in it: Create fails after its
	// directory was made.
	dir := longDir(t, 4058)
	s, _ := spaceStoreIn(t, dir, 4<<20, &free, &logs)
	if sink, err := s.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil); err == nil {
		sink.Cancel()
		t.Fatal("Create succeeded though its meta.json path is too long")
	}
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial snapshot left after a failed Create: %v", left)
	}

	// The finished snapshot's name is taken: Close fails to move it there.
	s, dir = spaceStore(t, 4<<20, &free, &logs)
	sink, err := s.Create(raft.SnapshotVersionMax, 20, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(bytes.Repeat([]byte("stream "), 1<<17)); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "snapshots", sink.ID(), "taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err == nil {
		t.Fatal("Close succeeded though the snapshot's name is taken")
	}
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial snapshot left after a failed Close: %v", left)
	}
}
