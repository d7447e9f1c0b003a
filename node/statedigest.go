package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"powermail/fsm"
)

// A state check compares the members' directory states: it commits one
// fsm.StateDigest entry, every node digests its state as it stood right
// after that entry (in the background, from a Pebble snapshot), and the
// node that asked collects the digests over the cluster RPC.

// Limits of the state check.
const (
	// DefaultStateCheckWait is how long a check waits for the members'
	// digests when the request does not say.
	DefaultStateCheckWait = time.Minute
	// MaxStateCheckWait caps the wait a request may ask for: the admin
	// request holds a connection for all of it.
	MaxStateCheckWait = time.Hour
	// maxDigestsKept is how many digests a node remembers (the newest);
	// a digest older than that answers as unknown.
	maxDigestsKept = 32
	// maxDigestsRunning is how many digests may wait or run at once on a
	// node. Each holds a Pebble snapshot, which keeps compactions from
	// dropping what it sees; past the cap a request is answered with an
	// error at once instead of queueing.
	maxDigestsRunning = 4
)

// StateDigestReport is one node's answer for one digest entry.
type StateDigestReport struct {
	Node string `json:"node"`
	// Known: the node applied the entry (it may still be computing).
	Known bool `json:"known"`
	// Done: the digest is computed, or failed (Error).
	Done   bool   `json:"done"`
	Index  uint64 `json:"index,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Keys   int64  `json:"keys,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	Error  string `json:"error,omitempty"`
}

// digests is a node's recent state digests by entry ID.
type digests struct {
	mu      sync.Mutex
	byID    map[string]*StateDigestReport
	order   []string // IDs, oldest first
	running int
	turn    chan struct{} // one digest computes at a time
}

func newDigests() *digests {
	return &digests{byID: map[string]*StateDigestReport{}, turn: make(chan struct{}, 1)}
}

// get returns a copy of the report for id.
func (d *digests) get(id string) StateDigestReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.byID[id]; ok {
		return *r
	}
	return StateDigestReport{}
}

// put records r under id, forgetting the oldest past maxDigestsKept.
func (d *digests) put(id string, r StateDigestReport) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.byID[id]; !ok {
		d.order = append(d.order, id)
		if len(d.order) > maxDigestsKept {
			delete(d.byID, d.order[0])
			d.order = d.order[1:]
		}
	}
	d.byID[id] = &r
}

// admit counts a digest in, or reports that maxDigestsRunning are.
func (d *digests) admit() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running >= maxDigestsRunning {
		return false
	}
	d.running++
	return true
}

func (d *digests) leave() {
	d.mu.Lock()
	d.running--
	d.mu.Unlock()
}

// onStateDigest is fsm's hook, on the apply path: it must not block. It
// records the entry and digests the view in the background.
func (n *Node) onStateDigest(id string, v *fsm.View) {
	rep := StateDigestReport{Node: n.cfg.ID, Known: true, Index: v.Index()}
	if !n.digests.admit() {
		v.Release()
		rep.Done, rep.Error = true, fmt.Sprintf("%d state digests already waiting or running on this node", maxDigestsRunning)
		n.digests.put(id, rep)
		return
	}
	n.digests.put(id, rep)
	ran := n.spawn(func(ctx context.Context) {
		defer n.digests.leave()
		defer v.Release()
		n.digests.put(id, n.digestView(ctx, v, rep))
	})
	if !ran {
		n.digests.leave()
		v.Release()
		rep.Done, rep.Error = true, "node closing"
		n.digests.put(id, rep)
	}
}

// digestView computes one digest, after any other one on this node.
func (n *Node) digestView(ctx context.Context, v *fsm.View, rep StateDigestReport) StateDigestReport {
	rep.Done = true
	select {
	case n.digests.turn <- struct{}{}:
		defer func() { <-n.digests.turn }()
	case <-ctx.Done():
		rep.Error = ctx.Err().Error()
		return rep
	}
	start := time.Now()
	d, err := v.Digest(ctx)
	if err != nil {
		rep.Error = err.Error()
		n.log.Warn("state digest failed", "index", v.Index(), "err", err)
		return rep
	}
	rep.SHA256, rep.Keys, rep.Bytes = d.SHA256, d.Keys, d.Bytes
	n.log.Info("state digest", "index", d.Index, "sha256", d.SHA256, "keys", d.Keys, "took", time.Since(start))
	return rep
}

// handleStateDigest answers GET /rpc/statedigest/{id} with this node's
// report: unknown (not applied yet, or forgotten), computing, or done.
func (n *Node) handleStateDigest(w http.ResponseWriter, r *http.Request) {
	rep := n.digests.get(r.PathValue("id"))
	rep.Node = n.cfg.ID
	writeRPC(w, rep, nil)
}

// StateCheck is the outcome of a state check.
type StateCheck struct {
	ID    string `json:"id"`
	Index uint64 `json:"index"` // of the digest entry
	// Nodes is every member's report, in ID order. A member that did not
	// answer with a digest in time has Done false or an Error.
	Nodes []StateDigestReport `json:"nodes"`
	// Equal: every member answered, all with one digest.
	Equal bool `json:"equal"`
	// Differ lists the members whose digest is not the one most members
	// hold (every member that answered, when no digest has a majority of
	// those that did); Missing those that gave no digest.
	Differ  []string `json:"differ,omitempty"`
	Missing []string `json:"missing,omitempty"`
}

// ErrStateCheckEncoding: the cluster's command encoding is below the one
// that carries fsm.StateDigest.
var ErrStateCheckEncoding = &fsm.Error{Kind: fsm.ErrInvalid, Msg: fmt.Sprintf(
	"the state check needs command encoding %d: raise it (powermail settings set --command-encoding %d) once every node runs a release that reads it",
	fsm.EncodingJSON9, fsm.EncodingJSON9)}

// CheckState commits a StateDigest entry and collects every member's
// digest of its state at it, waiting up to wait (DefaultStateCheckWait
// when 0, at most MaxStateCheckWait) for them.
func (n *Node) CheckState(ctx context.Context, wait time.Duration) (StateCheck, error) {
	if wait <= 0 {
		wait = DefaultStateCheckWait
	}
	if wait > MaxStateCheckWait {
		return StateCheck{}, fmt.Errorf("%w: wait %v is over %v", ErrInvalidArgument, wait, MaxStateCheckWait)
	}
	// A node that has just joined may not yet have applied the settings:
	// read them as of the leader's commit.
	if err := n.readBarrier(ctx); err != nil {
		return StateCheck{}, fmt.Errorf("state check: %w", err)
	}
	if enc := n.commandEncoding(); enc < fsm.EncodingJSON9 {
		return StateCheck{}, fmt.Errorf("%w (this cluster is at %d)", ErrStateCheckEncoding, enc)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	_, index, err := n.propose(ctx, &fsm.StateDigest{ID: id})
	if err != nil {
		return StateCheck{}, fmt.Errorf("commit the state digest entry: %w", err)
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return StateCheck{}, fmt.Errorf("state check: %w", err)
	}
	servers := cf.Configuration().Servers
	out := StateCheck{ID: id, Index: index, Nodes: make([]StateDigestReport, len(servers))}
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { out.Nodes[i] = n.collectDigest(ctx, string(s.ID), string(s.Address), id) })
	}
	wg.Wait()
	slices.SortFunc(out.Nodes, func(a, b StateDigestReport) int { return strings.Compare(a.Node, b.Node) })
	out.judge()
	return out, nil
}

// digestPoll is how often a member is asked for a digest not ready yet.
const digestPoll = 100 * time.Millisecond

// collectDigest asks member id (at addr) for its digest until it is done
// or ctx ends. An answer of another member than id (a relay on the path:
// peerid.go) is refused, or it would stand for id's digest and hide a
// divergence of id's state.
func (n *Node) collectDigest(ctx context.Context, id, addr, digestID string) StateDigestReport {
	var rep StateDigestReport
	var lastErr error
	for {
		if id == n.cfg.ID {
			rep, lastErr = n.digests.get(digestID), nil
		} else {
			var got StateDigestReport
			lastErr = n.callAs(ctx, id, addr, "GET", "/rpc/statedigest/"+url.PathEscape(digestID), nil, &got)
			if lastErr == nil {
				rep = got
			}
		}
		if rep.Done {
			rep.Node = id
			return rep
		}
		select {
		case <-ctx.Done():
			rep.Node = id
			switch {
			case lastErr != nil:
				rep.Error = "did not answer: " + lastErr.Error()
			case rep.Known:
				rep.Error = "digest not done in time"
			default:
				rep.Error = "did not apply the digest entry in time"
			}
			return rep
		case <-time.After(digestPoll):
		}
	}
}

// judge sets Equal, Differ and Missing from the reports.
func (c *StateCheck) judge() {
	count := map[string]int{}
	answered := 0
	for _, r := range c.Nodes {
		if r.Done && r.Error == "" {
			count[r.SHA256]++
			answered++
		} else {
			c.Missing = append(c.Missing, r.Node)
		}
	}
	major := ""
	for sum, k := range count {
		if 2*k > answered {
			major = sum
		}
	}
	for _, r := range c.Nodes {
		if r.Done && r.Error == "" && r.SHA256 != major {
			c.Differ = append(c.Differ, r.Node)
		}
	}
	c.Equal = len(c.Missing) == 0 && len(c.Differ) == 0 && answered > 0
}

// checkStateRoute serves POST /v1/cluster/check-state; the optional
// query parameter wait is a Go duration ("90s").
func (n *Node) checkStateRoute(r *http.Request) (any, error) {
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: wait %q is not a positive duration", ErrInvalidArgument, s)
		}
		wait = d
	}
	return n.CheckState(r.Context(), wait)
}
