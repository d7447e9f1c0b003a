package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Repair yields to mail. Repair and rebalance copies compete with
// deliveries for the same disks, CPUs and raft log. The copy gate lets
// repairWorkers copies run at once while the cluster is quiet, and only
// Config.RepairBusyCopies while mail is being committed: upkeep takes the
// spare capacity, and delivery keeps most of the machine. The gate never
// closes entirely, so a cluster under constant load still repairs.
//
// A copy's share of the gate follows its size. A body of more than
// smallCopy bytes takes a whole slot; a smaller one a quarter of a slot,
// because what it costs is fixed per copy (an RPC, a share of an fsync, a
// raft entry) and small. Measured with 4 KiB bodies under load, four small
// copies cost delivery about what one attachment-sized copy does
// (BENCHMARKS.md).
//
// "Mail is being committed" means this node applied a delivery or APPEND
// within mailWindow. Every node applies every entry, so the leader, which
// runs repair, sees the deliveries of the whole cluster.

// mailWindow is how long after the last applied delivery the cluster
// counts as busy.
const mailWindow = 250 * time.Millisecond

// gatePoll is how often a waiting copy looks again.
const gatePoll = 20 * time.Millisecond

// smallCopy is the largest body that takes a quarter slot, and
// slotUnits the units of one slot.
const (
	smallCopy = 64 << 10
	slotUnits = 4
)

// copyUnits is a copy's share of the gate, in units of a quarter slot.
func copyUnits(size int64) int {
	if size <= smallCopy {
		return 1
	}
	return slotUnits
}

type copyGate struct {
	busyLimit int           // slots while mail flows
	lastMail  *atomic.Int64 // unix nanos of the last applied delivery
	mu        sync.Mutex
	inUse     int // units
	// largeWaiting counts large copies waiting for room; small copies
	// hold back meanwhile, or a stream of them would keep a whole slot
	// from ever coming free.
	largeWaiting int
}

func newCopyGate(busyLimit int, lastMail *atomic.Int64) *copyGate {
	return &copyGate{busyLimit: max(1, min(busyLimit, repairWorkers)), lastMail: lastMail}
}

// busy reports whether a delivery was applied within mailWindow.
func (g *copyGate) busy() bool {
	return time.Since(time.Unix(0, g.lastMail.Load())) < mailWindow
}

// acquire waits for room for a copy of a body of size bytes; the caller
// must call the returned func when the copy is done.
func (g *copyGate) acquire(ctx context.Context, size int64) (func(), error) {
	units := copyUnits(size)
	large := units == slotUnits
	waiting := false // counted in largeWaiting
	defer func() {
		if waiting {
			g.mu.Lock()
			g.largeWaiting--
			g.mu.Unlock()
		}
	}()
	for {
		g.mu.Lock()
		limit := repairWorkers * slotUnits
		if g.busy() {
			limit = g.busyLimit * slotUnits
		}
		yield := !large && g.largeWaiting > 0
		if !yield && g.inUse+units <= limit {
			g.inUse += units
			g.mu.Unlock()
			return func() { g.release(units) }, nil
		}
		if large && !waiting {
			g.largeWaiting++
			waiting = true
		}
		g.mu.Unlock()
		t := time.NewTimer(gatePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (g *copyGate) release(units int) {
	g.mu.Lock()
	g.inUse -= units
	g.mu.Unlock()
}
