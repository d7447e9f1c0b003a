package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestCopyGateYieldsToMail(t *testing.T) {
	var lastMail atomic.Int64
	g := newCopyGate(2, &lastMail)
	ctx := context.Background()
	var releases []func()
	for range repairWorkers { // quiet: every worker gets a slot
		r, err := g.acquire(ctx, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	for _, r := range releases {
		r()
	}

	lastMail.Store(time.Now().Add(time.Hour).UnixNano()) // mail flows (for the whole check): two slots
	r1, _ := g.acquire(ctx, 1<<20)
	r2, _ := g.acquire(ctx, 1<<20)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := g.acquire(short, 1<<20); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third copy while mail flows: %v, want to wait", err)
	}

	// Once the mail stops, a waiting copy proceeds.
	lastMail.Store(time.Now().Add(-time.Second).UnixNano())
	done := make(chan error, 1)
	go func() {
		r, err := g.acquire(ctx, 1<<20)
		if err == nil {
			r()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("copy still waiting after the mail stopped")
	}
	r1()
	r2()
	if g.inUse != 0 {
		t.Errorf("slots in use after every release: %d", g.inUse)
	}
	if newCopyGate(0, &lastMail).busyLimit != 1 || newCopyGate(99, &lastMail).busyLimit != repairWorkers {
		t.Error("busy limit not clamped to 1..repairWorkers")
	}
}

// While mail flows, a slot holds one large copy or four small ones.
func TestCopyGateCountsSmallCopiesAsQuarters(t *testing.T) {
	var lastMail atomic.Int64
	lastMail.Store(time.Now().Add(time.Hour).UnixNano()) // busy throughout
	g := newCopyGate(1, &lastMail)
	ctx := context.Background()
	tryAcquire := func(size int64) (func(), bool) {
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		r, err := g.acquire(short, size)
		return r, err == nil
	}
	var small []func()
	for i := range slotUnits {
		r, ok := tryAcquire(smallCopy)
		if !ok {
			t.Fatalf("small copy %d of %d refused", i+1, slotUnits)
		}
		small = append(small, r)
	}
	if _, ok := tryAcquire(1); ok {
		t.Fatal("a fifth small copy got in")
	}
	small[0]()
	if _, ok := tryAcquire(smallCopy + 1); ok {
		t.Fatal("a large copy got in beside three small ones")
	}
	for _, r := range small[1:] {
		r()
	}
	big, ok := tryAcquire(smallCopy + 1)
	if !ok {
		t.Fatal("a large copy refused on an empty gate")
	}
	if _, ok := tryAcquire(1); ok {
		t.Fatal("a small copy got in beside a large one")
	}
	big()
	if g.inUse != 0 {
		t.Errorf("units in use after every release: %d", g.inUse)
	}
}

// A large copy waiting for a whole slot holds small ones back, so a
// stream of small copies cannot keep it out.
func TestCopyGateLargeCopyIsNotStarved(t *testing.T) {
	var lastMail atomic.Int64
	lastMail.Store(time.Now().Add(time.Hour).UnixNano()) // busy throughout
	g := newCopyGate(1, &lastMail)
	ctx := context.Background()
	r1, _ := g.acquire(ctx, 1)
	r2, _ := g.acquire(ctx, 1)
	got := make(chan func(), 1)
	go func() {
		r, err := g.acquire(ctx, smallCopy+1)
		if err == nil {
			got <- r
		}
	}()
	waitFor(t, 5*time.Second, "the large copy to wait", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return g.largeWaiting == 1 })
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := g.acquire(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("small copy beside a waiting large one: %v, want to wait", err)
	}
	r1()
	r2()
	select {
	case r := <-got:
		r()
	case <-time.After(5 * time.Second):
		t.Fatal("the large copy never got in")
	}
	if g.inUse != 0 || g.largeWaiting != 0 {
		t.Errorf("gate left %d units in use, %d large waiting", g.inUse, g.largeWaiting)
	}
}
