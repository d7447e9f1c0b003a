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
// "Mail is being committed" means this node applied a delivery or APPEND
// within mailWindow. Every node applies every entry, so the leader, which
// runs repair, sees the deliveries of the whole cluster.

// mailWindow is how long after the last applied delivery the cluster
// counts as busy.
const mailWindow = 250 * time.Millisecond

// gatePoll is how often a waiting copy looks again.
const gatePoll = 20 * time.Millisecond

type copyGate struct {
	busyLimit int           // copies while mail flows
	lastMail  *atomic.Int64 // unix nanos of the last applied delivery
	mu        sync.Mutex
	inUse     int
}

func newCopyGate(busyLimit int, lastMail *atomic.Int64) *copyGate {
	return &copyGate{busyLimit: max(1, min(busyLimit, repairWorkers)), lastMail: lastMail}
}

// busy reports whether a delivery was applied within mailWindow.
func (g *copyGate) busy() bool {
	return time.Since(time.Unix(0, g.lastMail.Load())) < mailWindow
}

// acquire waits for a copy slot; the caller must call the returned func
// when the copy is done.
func (g *copyGate) acquire(ctx context.Context) (func(), error) {
	for {
		g.mu.Lock()
		limit := repairWorkers
		if g.busy() {
			limit = g.busyLimit
		}
		if g.inUse < limit {
			g.inUse++
			g.mu.Unlock()
			return g.release, nil
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

func (g *copyGate) release() {
	g.mu.Lock()
	g.inUse--
	g.mu.Unlock()
}
