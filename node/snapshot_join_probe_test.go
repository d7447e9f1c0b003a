package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// TestSnapshotJoinProbe measures how long a node joining a cluster whose
// directory holds N mailboxes and N forwards takes to have the state
// installed: the leader streams a view of its state to a file
// (snapstore.go), sends it over the cluster link, and the new node
// restores it. A one-node cluster is loaded through raft, its log
// compacted, then n2 and n3 join in turn (n3 into a cluster of two).
// Gated, since a million of each take minutes to load:
//
//	PM_PROBE_JOIN=1000000 go test -count=1 -run TestSnapshotJoinProbe -v -timeout 1h ./node
func TestSnapshotJoinProbe(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PM_PROBE_JOIN"))
	if n < 5000 {
		t.Skip("PM_PROBE_JOIN unset (or below 5000)")
	}
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: RaftTuning{}}
	c.tune.TrailingLogs = 5
	c.tune.SnapshotThreshold = 1 << 30 // only the explicit snapshot below
	t.Cleanup(c.closeAll)
	l := c.start("n1", true, "")
	c.leader(10 * time.Second)
	start := time.Now()
	loadDirectory(t, l, n)
	t.Logf("loaded %d mailboxes and %d forwards through raft in %v (applied index %d)",
		n, n, time.Since(start).Round(time.Millisecond), l.State().Applied())
	if err := l.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if first, _ := l.logStore.FirstIndex(); first < 100 {
		t.Fatalf("log not compacted: first index %d", first)
	}
	last, applied := fmt.Sprintf("user%07d@d%d.example", n-1, (n-1)%10), l.State().Applied()
	for _, id := range []string{"n2", "n3"} {
		start := time.Now()
		var peakHeap uint64
		stop := sampleHeap(&peakHeap)
		// New returns once the join is committed, which for n2 (the
		// second voter) waits for its install; the test cluster's 20 s
		// start would give up first at a million.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		j, err := New(ctx, c.config(id, false, l.AdminAddr()))
		cancel()
		if err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
		c.nodes[id] = j
		joined := time.Since(start)
		waitFor(t, 30*time.Minute, id+" to install the snapshot", func() bool {
			return j.State().Applied() >= applied && testutilCounter(j.metrics.restores) >= 1
		})
		took := time.Since(start)
		stop()
		if _, err := j.State().Mailbox(last); err != nil {
			t.Fatalf("%s after the install: %v", id, err)
		}
		if r, err := j.State().Resolve("alias-" + last); err != nil || len(r.Mailboxes) != 1 || r.Mailboxes[0] != last {
			t.Fatalf("%s resolves alias-%s to %+v, %v", id, last, r, err)
		}
		t.Logf("%s: joined in %v, state installed %v after it started; Go heap in use peaked at %.0f MiB (the process's three nodes)",
			id, joined.Round(time.Millisecond), took.Round(time.Millisecond), float64(peakHeap)/(1<<20))
	}
	mustApply(t, c.nodes["n3"], addMailbox("after-join@d0.example"))
	c.readEverywhere("after-join@d0.example")
}

// loadDirectory applies 10 domains, n mailboxes (1,000 an entry, one
// argon2id hash as a migration carries) and n forwards (one an entry,
// from 256 proposers at once) through n.
func loadDirectory(t *testing.T, n *Node, count int) {
	hash, err := fsm.HashPassword("probe password")
	if err != nil {
		t.Fatal(err)
	}
	for d := range 10 {
		mustApply(t, n, &fsm.DomainAdd{Name: fmt.Sprintf("d%d.example", d)})
	}
	mailbox := func(i int) string { return fmt.Sprintf("user%07d@d%d.example", i, i%10) }
	var cmds []fsm.Command
	for i := 0; i < count; i += 1000 {
		add := &fsm.MailboxAdd{}
		for j := i; j < min(i+1000, count); j++ {
			add.Mailboxes = append(add.Mailboxes, fsm.NewMailbox{Address: mailbox(j), PasswordHash: hash, QuotaBytes: 1 << 30})
		}
		cmds = append(cmds, add)
	}
	proposeAll(t, n, 4, cmds)
	cmds = cmds[:0]
	for i := range count {
		cmds = append(cmds, &fsm.ForwardAdd{Address: "alias-" + mailbox(i), Targets: []string{mailbox(i)}})
	}
	proposeAll(t, n, 256, cmds)
}

// proposeAll applies cmds through n from workers proposers at once.
func proposeAll(t *testing.T, n *Node, workers int, cmds []fsm.Command) {
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(cmds) || failed.Load() != nil {
					return
				}
				if err := applyOnce(n, cmds[i]); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// applyOnce applies an adding command, again after an unknown outcome,
// which a repeat that finds its own writes answers with ErrExists.
func applyOnce(n *Node, cmd fsm.Command) error {
	for try := 1; ; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := n.Apply(ctx, cmd)
		cancel()
		if err == nil || try > 1 && errors.Is(err, fsm.ErrExists) {
			return nil
		}
		// Not enqueued within ApplyTimeout: raft took nothing, so try again.
		again := errors.Is(err, ErrIndeterminate) || errors.Is(err, raft.ErrEnqueueTimeout)
		if !again || try == 5 {
			return fmt.Errorf("apply %T: %w", cmd, err)
		}
	}
}

// sampleHeap records the peak of the Go heap in use, every 20 ms, until
// the returned stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			*peak = max(*peak, m.HeapInuse)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
