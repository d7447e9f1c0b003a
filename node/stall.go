package node

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"powermail/fsm"
)

// Upkeep calls (repair, garbage collection, verification) run under the
// node's long-lived context, so without bounds of their own a peer that
// stops answering (a paused process keeps its connections open and its
// kernel keeps acknowledging) would hold a repair round, and the lock
// that serialises rounds, for as long as it stays paused.

// upkeepCallTimeout bounds an upkeep RPC that moves no body.
const upkeepCallTimeout = time.Minute

// fetchFloorRate is the slowest a repair copy may go before it is given
// up: a copy of size bytes gets upkeepCallTimeout plus size at this rate.
const fetchFloorRate = 1 << 20 // bytes/s

// upkeepCall is callAs member m under upkeepCallTimeout plus extra.
func (n *Node) upkeepCall(ctx context.Context, extra time.Duration, m fsm.Member, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, upkeepCallTimeout+extra)
	defer cancel()
	return n.callAs(ctx, m.ID, m.ClusterAddr, method, path, body, out)
}

// copyTime is the extra time a copy of size bytes may take.
func copyTime(size int64) time.Duration {
	return time.Duration(size/fetchFloorRate+1) * time.Second
}

// stallGuard cancels a request when its response stops arriving: nothing
// for idle, before the header or between two reads of the body. A body
// may take as long as it needs while bytes keep coming.
type stallGuard struct {
	idle   time.Duration
	cancel context.CancelFunc
	timer  *time.Timer
	fired  atomic.Bool
	body   io.ReadCloser
}

// newStallGuard returns the context to send the request with; the clock
// runs from now.
func newStallGuard(ctx context.Context, idle time.Duration) (context.Context, *stallGuard) {
	ctx, cancel := context.WithCancel(ctx)
	g := &stallGuard{idle: idle, cancel: cancel}
	g.timer = time.AfterFunc(idle, func() {
		g.fired.Store(true)
		cancel()
	})
	return ctx, g
}

// explain turns the cancellation the guard caused into errReplicaTimeout.
func (g *stallGuard) explain(err error) error {
	if err != nil && g.fired.Load() {
		return fmt.Errorf("%w: nothing for %v (%v)", errReplicaTimeout, g.idle, err)
	}
	return err
}

// wrap guards the response body; closing it releases the guard.
func (g *stallGuard) wrap(body io.ReadCloser) io.ReadCloser {
	g.body = body
	return g
}

func (g *stallGuard) Read(p []byte) (int, error) {
	k, err := g.body.Read(p)
	if err != nil && err != io.EOF {
		return k, g.explain(err)
	}
	if k > 0 {
		g.timer.Reset(g.idle)
	}
	return k, err
}

func (g *stallGuard) Close() error {
	g.timer.Stop()
	g.cancel()
	if g.body == nil {
		return nil
	}
	return g.body.Close()
}
