package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// gateFSM records applied commands; it blocks on hold while hold is set.
type gateFSM struct {
	mu      sync.Mutex
	applied map[string]int
	hold    chan struct{}
}

func (f *gateFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	hold := f.hold
	f.applied[string(l.Data)]++
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return nil
}
func (f *gateFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("no snapshots") }
func (f *gateFSM) Restore(io.ReadCloser) error         { return nil }

// singleRaft starts a one-node raft (in-memory log and transport: the
// gate, not raft, is under test) and waits for it to lead.
func singleRaft(t *testing.T, f raft.FSM) *raft.Raft {
	t.Helper()
	c := raft.DefaultConfig()
	c.LocalID = "g1"
	c.LogOutput = io.Discard
	c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = 50*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	store := raft.NewInmemStore()
	_, tr := raft.NewInmemTransport("g1")
	r, err := raft.NewRaft(c, f, store, store, raft.NewInmemSnapshotStore(), tr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown().Error() })
	r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: "g1", Address: tr.LocalAddr()}}})
	for deadline := time.Now().Add(5 * time.Second); r.State() != raft.Leader; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
	return r
}

func gateApply(g *applyGate, data string) error {
	_, err := g.apply(context.Background(), []byte(data))
	return err
}

// While a batch is in raft, later proposals wait at the gate and then go
// in together; every proposal is applied exactly once and nothing is
// left behind.
func TestApplyGateHoldsProposalsWhileABatchIsInRaft(t *testing.T) {
	g, f, unblock, first := heldGate(t, 5*time.Second, 4)

	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- gateApply(g, fmt.Sprint("p", i)) }()
	}
	// Each time four are waiting (max) they go in as a batch; the last
	// two wait for a batch to complete.
	// (Two waiting is also a passing state while the ten still arrive.)
	waitFor(t, 5*time.Second, "two proposals held behind three batches", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == 2 && g.inflight == 3
	})
	unblock()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range n {
		if c := f.applied[fmt.Sprint("p", i)]; c != 1 {
			t.Errorf("p%d applied %d times", i, c)
		}
	}
	if g.inflight != 0 || len(g.queue) != 0 {
		t.Fatalf("gate left %d in flight, %d queued", g.inflight, len(g.queue))
	}
}

// Many concurrent proposers through the gate: each is applied once.
func TestApplyGateUnderLoad(t *testing.T) {
	f := &gateFSM{applied: map[string]int{}}
	r := singleRaft(t, f)
	g := newApplyGate(r, 5*time.Second, 1, 16)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 50 {
				if err := gateApply(g, fmt.Sprint(w, "/", i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(f.applied) != 32*50 {
		t.Fatalf("%d distinct proposals applied, want %d", len(f.applied), 32*50)
	}
	for k, c := range f.applied {
		if c != 1 {
			t.Fatalf("%s applied %d times", k, c)
		}
	}
	if g.inflight != 0 || len(g.queue) != 0 {
		t.Fatalf("gate left %d in flight, %d queued", g.inflight, len(g.queue))
	}
}

// heldGate is a gate whose first proposal sits in the FSM until release
// is called, so that later ones queue behind it.
func heldGate(t *testing.T, timeout time.Duration, max int) (*applyGate, *gateFSM, func(), <-chan error) {
	t.Helper()
	f := &gateFSM{applied: map[string]int{}, hold: make(chan struct{})}
	r := singleRaft(t, f)
	var once sync.Once
	release := func() {
		once.Do(func() {
			f.mu.Lock()
			close(f.hold)
			f.hold = nil
			f.mu.Unlock()
		})
	}
	t.Cleanup(release) // before raft's shutdown, which waits for the FSM
	g := newApplyGate(r, timeout, 1, max)
	first := make(chan error, 1)
	go func() { first <- gateApply(g, "first") }()
	waitFor(t, 5*time.Second, "the first proposal in the FSM", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.applied["first"] == 1 })
	return g, f, release, first
}

// queueOne proposes data behind the held batch and returns once it waits
// in the queue; its answer comes on the channel.
func queueOne(t *testing.T, g *applyGate, ctx context.Context, data string) <-chan error {
	t.Helper()
	got := make(chan error, 1)
	go func() { _, err := g.apply(ctx, []byte(data)); got <- err }()
	waitFor(t, 5*time.Second, "a queued proposal", func() bool { g.mu.Lock(); defer g.mu.Unlock(); return len(g.queue) == 1 })
	return got
}

func (f *gateFSM) count(k string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applied[k]
}

// A queued proposal whose caller gives up is withdrawn: it fails with the
// context's error and is never applied.
func TestApplyGateWithdrawsACancelledProposal(t *testing.T) {
	g, f, release, first := heldGate(t, 5*time.Second, 64)
	ctx, cancel := context.WithCancel(context.Background())
	got := queueOne(t, g, ctx, "gone")
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled proposal: %v, want context.Canceled", err)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := gateApply(g, "after"); err != nil {
		t.Fatal(err)
	}
	if c := f.count("gone"); c != 0 {
		t.Fatalf("withdrawn proposal applied %d times", c)
	}
}

// A proposal that waited at the gate past the timeout fails without
// reaching raft, as raft.Apply's own enqueue timeout would.
func TestApplyGateTimesOutAQueuedProposal(t *testing.T) {
	g, f, release, first := heldGate(t, 200*time.Millisecond, 64)
	got := queueOne(t, g, context.Background(), "late")
	time.Sleep(300 * time.Millisecond)
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-got; !errors.Is(err, raft.ErrEnqueueTimeout) {
		t.Fatalf("late proposal: %v, want ErrEnqueueTimeout", err)
	}
	if c := f.count("late"); c != 0 {
		t.Fatalf("timed-out proposal applied %d times", c)
	}
}

// Closing the gate answers every caller: a queued proposal at once, one in
// raft that raft never answers after closeGrace.
func TestApplyGateCloseReleasesEveryCaller(t *testing.T) {
	g, f, _, first := heldGate(t, 5*time.Second, 64)
	queued := queueOne(t, g, context.Background(), "queued")
	start := time.Now()
	g.close()
	if err := <-queued; !errors.Is(err, raft.ErrRaftShutdown) {
		t.Fatalf("queued proposal after close: %v, want ErrRaftShutdown", err)
	}
	select {
	case err := <-first: // held in the FSM, so never answered
		if !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("proposal in raft after close: %v, want ErrRaftShutdown", err)
		}
	case <-time.After(closeGrace + 5*time.Second):
		t.Fatal("a caller still waits after close")
	}
	if d := time.Since(start); d < closeGrace {
		t.Errorf("in-raft caller released after %v, before the grace", d)
	}
	if _, err := g.apply(context.Background(), []byte("after")); !errors.Is(err, raft.ErrRaftShutdown) {
		t.Fatalf("proposal after close: %v", err)
	}
	if c := f.count("queued"); c != 0 {
		t.Fatalf("queued proposal applied %d times after close", c)
	}
}
