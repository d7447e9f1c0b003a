package node

import (
	"context"
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOrphanSweepMemoryIsBounded: a node can hold millions of unlisted
// bodies at once (removed and joined again without a wipe: repair has
// re-homed and unlisted everything it held). The sweep must not hold a
// record of every one of them before it deletes any: its live heap
// stays bounded whatever the number of orphans. Here 300,000 orphans,
// swept right after a restart, so that every copy counts as recently
// written (storage.DeleteIfIdle) and the sweep is all scanning. The
// second of two sweeps is measured (the first opens the store's tables),
// by the live heap of a collection every 100 ms (forced collections
// any closer slowed a sweep on a loaded machine past the grace, which
// then rightly deleted). Holding every doomed
// body, it grew by 22 MiB; by the batch, by under 1 MiB.
func TestOrphanSweepMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 300,000 bodies")
	}
	const orphans, grace = 300_000, 15 * time.Second
	c := newTestClusterWith(t, 1, nil)
	n := c.leader(10 * time.Second)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < orphans; i += 64 {
				if _, _, err := n.bodies.Put(context.Background(), strings.NewReader(fmt.Sprint("orphan ", i)), nil); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	time.Sleep(grace + 500*time.Millisecond) // older than the grace
	cfg := n.cfg
	n.Close()
	n = c.startWith(cfg) // nothing remembered as written recently
	opened := time.Now()
	ctx := ctxT(t, 120*time.Second)
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}

	// A first sweep opens the store's tables and fills what Pebble keeps
	// per table; the second one is measured.
	began := time.Now()
	if deleted, _, err := n.SweepOrphans(ctx, grace); err != nil || deleted != 0 {
		t.Fatalf("first sweep: deleted %d, %v (want none: every copy is recent after the restart)", deleted, err)
	}
	t.Logf("a sweep of %d orphans took %v", orphans, time.Since(began))
	if time.Since(opened) > grace/2 {
		t.Skipf("the restart and first sweep took %v: the measured one could outlast the grace and delete", time.Since(opened))
	}
	base := liveHeap()
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if live := liveHeap(); live > peak.Load() {
				peak.Store(live)
			}
		}
	}()
	deleted, _, err := n.SweepOrphans(ctx, grace)
	close(done)
	<-sampled
	if err != nil || deleted != 0 {
		t.Fatalf("sweep: deleted %d, %v (want none: every copy is recent after the restart)", deleted, err)
	}
	grew := int64(peak.Load()) - int64(base)
	t.Logf("live heap %d MiB before the sweep, at most %+d KiB during it", base>>20, grew>>10)
	if grew > 4<<20 {
		t.Fatalf("the sweep's live heap grew by %d KiB over %d orphans", grew>>10, orphans)
	}
}

// liveHeap collects garbage and returns the bytes that collection found
// live (not counting what was allocated while it ran).
func liveHeap() uint64 {
	runtime.GC()
	sample := []rtmetrics.Sample{{Name: "/gc/heap/live:bytes"}}
	rtmetrics.Read(sample)
	return sample[0].Value.Uint64()
}
