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
		r, err := g.acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	for _, r := range releases {
		r()
	}

	lastMail.Store(time.Now().UnixNano()) // mail flows: two slots
	r1, _ := g.acquire(ctx)
	r2, _ := g.acquire(ctx)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := g.acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third copy while mail flows: %v, want to wait", err)
	}

	// Once the mail stops, a waiting copy proceeds.
	lastMail.Store(time.Now().Add(-time.Second).UnixNano())
	done := make(chan error, 1)
	go func() {
		r, err := g.acquire(ctx)
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
