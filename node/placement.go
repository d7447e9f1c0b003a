package node

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// Placement. The node that receives a message chooses its replicas: itself
// plus R-1 peers, sampled without replacement with probability
// proportional to each peer's free disk space above its reserve, so bytes
// spread across nodes and full disks fill last. Peers that failed
// recently go last, and after them peers with no room at all.
// Every node polls its peers' storage stats in the background; the leader
// (through the FSM) then validates the chosen set at commit.

// placement caches peers' storage stats.
type placement struct {
	mu    sync.Mutex
	stats map[string]storage.Stats
	seen  map[string]time.Time // last successful poll per peer
}

func (p *placement) set(id string, s storage.Stats) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stats == nil {
		p.stats, p.seen = map[string]storage.Stats{}, map[string]time.Time{}
	}
	p.stats[id] = s
	p.seen[id] = time.Now()
}

// downFor is how long peer id has not answered a poll: since this node
// started if it never did.
func (p *placement) downFor(id string, started time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.seen[id]; ok {
		return time.Since(at)
	}
	return time.Since(started)
}

// get is a peer's stats as last polled, and whether it ever was.
func (p *placement) get(id string) (storage.Stats, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.stats[id]
	return s, ok
}

// free is the room a peer's store had for new bodies (free space above
// its reserve) when last polled, and whether it was ever polled.
func (p *placement) free(id string) (uint64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.stats[id]
	return s.Room(), ok
}

// full reports whether a peer's store had no room for new bodies when
// last polled: it would refuse a copy with storage.ErrNoSpace.
func (p *placement) full(id string) bool {
	f, ok := p.free(id)
	return ok && f == 0
}

// order sorts peers for placement: weighted random by free space
// (Efraimidis–Spirakis keys), unknown peers weighted like the median.
func (p *placement) order(peers []fsm.Member) {
	weights := make([]float64, len(peers))
	var known []float64
	for i, m := range peers {
		if f, ok := p.free(m.ID); ok {
			weights[i] = float64(f) + 1
			known = append(known, weights[i])
		}
	}
	median := 1.0
	if len(known) > 0 {
		sort.Float64s(known)
		median = known[len(known)/2]
	}
	keys := make([]float64, len(peers))
	for i := range peers {
		w := weights[i]
		if w == 0 {
			w = median
		}
		keys[i] = math.Log(rand.Float64()) / w // larger is better
	}
	idx := make([]int, len(peers))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return keys[idx[a]] > keys[idx[b]] })
	sorted := make([]fsm.Member, len(peers))
	for i, j := range idx {
		sorted[i] = peers[j]
	}
	copy(peers, sorted)
}

// pollStorage refreshes every peer's storage stats each interval.
func (n *Node) pollStorage(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		members, _ := n.state.Members()
		n.pollPeers(ctx, members)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollPeers reads the storage stats of the members other than this node,
// in parallel, each within two seconds.
func (n *Node) pollPeers(ctx context.Context, members []fsm.Member) {
	var wg sync.WaitGroup
	for _, m := range members {
		if m.ID == n.cfg.ID {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var s storage.Stats
			// Another member's answer is no sign of life (peerid.go).
			if err := n.callAs(cctx, m.ID, m.ClusterAddr, "GET", "/rpc/storage", nil, &s); err != nil {
				n.health.fail(m.ID)
				return
			}
			n.placement.set(m.ID, s)
		})
	}
	wg.Wait()
}
