package node

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// TestFailedBodyStoreThatFailsAgainBacksOff: a body store on a device
// that fails every write reopens fine (the open itself writes nothing to
// the log) and fails again at its next write. Each reopen that does not
// last counts as a failed try: the waits keep doubling up to their bound
// instead of starting over at one interval, so readiness, the failed
// metric and the peers' placement do not flap once per interval, and
// every flap does not cost the deliveries in flight.
func TestFailedBodyStoreThatFailsAgainBacksOff(t *testing.T) {
	disk := newFilledDiskFS()
	const interval = 100 * time.Millisecond
	c := newTestClusterWith(t, 1, func(cfg *Config) {
		cfg.BodyFS = disk
		cfg.BodyStoreReopenInterval = interval
	})
	n := c.leader(10 * time.Second)
	disk.tog.On() // for the whole test: the device fails every log write

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writes := make(chan struct{})
	go func() { // deliveries keep coming, so every reopen meets a write
		defer close(writes)
		for i := 0; ctx.Err() == nil; i++ {
			_, _, _ = n.bodies.Put(ctx, bytes.NewReader(fmt.Appendf(nil, "body %d", i)), nil)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-writes }()

	waitFor(t, 5*time.Second, "the store failed", func() bool { return n.bodies.Failed() != nil })
	// Over 40 intervals, waits of 1, 2, 4, 8, 8, 8, ... intervals allow
	// about 7 reopens; starting over at one interval after each reopen,
	// about 30.
	reopens, failed := 0, true
	for end := time.Now().Add(40 * interval); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		now := n.bodies.Failed() != nil
		if failed && !now {
			reopens++
		}
		failed = now
	}
	if reopens == 0 {
		t.Fatal("the store was never reopened; the test tried nothing")
	}
	if reopens > 10 {
		t.Fatalf("%d reopens in %v of a store that fails again at once, want the waits to grow", reopens, 40*interval)
	}
	t.Logf("%d reopens", reopens)
}
