package fsm

import (
	"bytes"
	"path/filepath"
	"runtime"
	"testing"
)

// TestRestoreAllocatesAboutTheSnapshotOnce: Restore streams the snapshot
// into the new store in batches of restoreBatchBytes, and what it
// allocates on the way is about the snapshot's size, not a multiple of
// it. It allocated 5.7 times the snapshot's bytes (3.4 GiB for a
// million mailboxes' 615 MiB) when each record was read into buffers of
// its own, each batch grew by doubling from empty and each length byte
// was summed through an allocation. The Go heap in use stays bounded
// either way (BENCHMARKS.md, "Directory snapshots at 1M mailboxes");
// the allocations cost collector time.
func TestRestoreAllocatesAboutTheSnapshotOnce(t *testing.T) {
	a := newApplier(t)
	fillDirectory(t, a, 20000)
	snap := dump(t, a.s)

	b, err := Open(filepath.Join(t.TempDir(), "restored"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := b.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	alloc := m1.TotalAlloc - m0.TotalAlloc
	t.Logf("restore of %d bytes allocated %d bytes (%.1f times)", len(snap), alloc, float64(alloc)/float64(len(snap)))
	if alloc > 7*uint64(len(snap))/2 {
		t.Fatalf("restore of a %d-byte snapshot allocated %d bytes, more than 3.5 times it", len(snap), alloc)
	}
	if got := dump(t, b); !bytes.Equal(got, snap) {
		t.Fatal("the restored state differs from the snapshot")
	}
}
