package node

import (
	"bytes"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// A cancelled stream (refused at the reserve, or cut off) is dropped
// before raft's sink syncs it: raft's Cancel flushes and fsyncs the
// partial file before removing it, writing out what is about to be
// deleted just when the disk is nearly full. The file, held open here
// past its removal, keeps at most the sink's last buffer.
func TestCancelledSnapshotIsNotSynced(t *testing.T) {
	const size = 8 << 20
	var free atomic.Int64
	var logs bytes.Buffer
	free.Store(1 << 40)
	s, dir := spaceStore(t, 4<<20, &free, &logs)
	sink, err := s.Create(raft.SnapshotVersionMax, 10, 1, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write(bytes.Repeat([]byte("partial "), size/8)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "snapshots", sink.ID()+".tmp", "state.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := sink.Cancel(); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if held := st.Blocks * 512; held > 64<<10 {
		t.Fatalf("the cancelled stream still held %d of its %d bytes when synced", held, size)
	}
	if left := partials(t, dir); len(left) != 0 {
		t.Fatalf("partial snapshot left after Cancel: %v", left)
	}
}
