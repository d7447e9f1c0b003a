package node

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestReadOnALeaderThatStepsDownGoesToTheNext: a read index the leader
// is confirming when it loses the leadership must not wait for a voter
// that never answers (a paused process accepts connections and stays
// silent): the read goes on to the new leader, as it did when raft's
// VerifyLeader failed on the step-down, instead of holding its readers
// for the whole apply timeout.
func TestReadOnALeaderThatStepsDownGoesToTheNext(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(10 * time.Second)
	ctx := ctxT(t, 30*time.Second)
	if err := l.Barrier(ctx); err != nil { // the leader's first barrier
		t.Fatal(err)
	}
	fs := c.followers(l)
	next, paused := fs[0], fs[1]
	pausedAddr := paused.ClusterAddr()
	paused.Kill()
	silentPeer(t, pausedAddr)

	// The next leader holds its answers to /rpc/term until the transfer.
	asked := make(chan struct{}, 16)
	release := make(chan struct{})
	var once sync.Once
	hold := func(r *http.Request) {
		asked <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	next.onTerm.Store(&hold)
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	done := make(chan error, 1)
	go func() { done <- l.Barrier(ctx) }()
	select {
	case <-asked:
	case err := <-done:
		t.Fatalf("the read ended before its leader asked the next one: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the leader never asked for the next leader's term")
	}
	if err := l.raft.LeadershipTransferToServer(raft.ServerID(next.ID()), raft.ServerAddress(next.ClusterAddr())).Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	moved := time.Now()
	once.Do(func() { close(release) })
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("read on the old leader: %v", err)
		}
		if el := time.Since(moved); el > 3*time.Second {
			t.Fatalf("the read took %v after the leadership moved", el)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the read still waits for the paused voter 8 s after the leadership moved")
	}
}

// TestLeaderReadsKeepTheirConnections: a read on the leader asks the
// other voters for their terms and goes on once a quorum answered.
// Cutting off the slower answer closed its connection (HTTP/1.1 cannot
// take a request back), so about every other read dialled a peer again,
// a handshake each (90 dials for 200 reads in a three-node cluster).
func TestLeaderReadsKeepTheirConnections(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(10 * time.Second)
	ctx := ctxT(t, 30*time.Second)
	if err := l.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	before := testutilCounter(l.metrics.rpcDials)
	const reads = 200
	for range reads {
		if err := l.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := testutilCounter(l.metrics.rpcDials) - before; d > 4 {
		t.Errorf("%d reads on the leader dialled its peers %v times", reads, d)
	}
}

// A voter of a release without /rpc/term (its router answers 404) is
// asked for its status, which carries its term. A status without a term
// (that of a node that did not answer, as a status lists it) is no
// answer: read as term 0 it would confirm any leader. Which voters
// answered 404 is remembered for a while, so a read asks them once.
func TestTermOfAnOlderReleaseFromItsStatus(t *testing.T) {
	c := newTestCluster(t, 1)
	a := c.leader(5 * time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, a.dialer(), slog.New(slog.NewTextHandler(io.Discard, nil)), func(conn net.Conn) { conn.Close() })
	go m.serve()
	t.Cleanup(func() { m.close() })
	var statuses, terms atomic.Int64
	var status atomic.Pointer[MemberStatus]
	mux := http.NewServeMux()
	mux.HandleFunc("GET /rpc/term", func(w http.ResponseWriter, r *http.Request) {
		terms.Add(1)
		http.NotFound(w, r)
	})
	mux.HandleFunc("GET /rpc/stats", func(w http.ResponseWriter, r *http.Request) {
		statuses.Add(1)
		writeRPC(w, *status.Load(), nil)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(m.rpc)
	t.Cleanup(func() { srv.Close() })
	ctx := ctxT(t, 10*time.Second)
	s := raft.Server{ID: "old", Address: raft.ServerAddress(ln.Addr().String()), Suffrage: raft.Voter}

	status.Store(&MemberStatus{ID: "old", Term: 41, Reachable: true})
	term, err := a.peerTerm(ctx, s)
	if err != nil || term != 41 || statuses.Load() != 1 {
		t.Fatalf("term %d, %v, after %d status requests; want 41 from one", term, err, statuses.Load())
	}
	status.Store(&MemberStatus{ID: "old", Term: 41})
	if term, err := a.peerTerm(ctx, s); err == nil {
		t.Fatalf("a status without a term gave term %d", term)
	}
	// The 404 is remembered: later reads ask its status at once.
	if terms.Load() != 1 || statuses.Load() != 2 {
		t.Fatalf("%d term and %d status requests for two reads, want 1 and 2", terms.Load(), statuses.Load())
	}
	// For a minute from the 404, however often the voter is read
	// meanwhile: then /rpc/term is asked again, as the node may have been
	// upgraded.
	var ahead atomic.Int64 // how far the memory's clock is ahead
	a.termless.mu.Lock()
	a.termless.now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	a.termless.mu.Unlock()
	status.Store(&MemberStatus{ID: "old", Term: 41, Reachable: true})
	for _, d := range []time.Duration{30 * time.Second, termlessMemory - time.Second} {
		ahead.Store(int64(d))
		if term, err := a.peerTerm(ctx, s); err != nil || term != 41 {
			t.Fatalf("%v on: term %d, %v", d, term, err)
		}
	}
	if terms.Load() != 1 {
		t.Fatalf("%d term requests within a minute of the 404, want 1", terms.Load())
	}
	ahead.Store(int64(termlessMemory + time.Second))
	if term, err := a.peerTerm(ctx, s); err != nil || term != 41 || terms.Load() != 2 {
		t.Fatalf("a minute on: term %d, %v, %d term requests, want 41 and 2", term, err, terms.Load())
	}
}

// A voter that answered /rpc/term with a 404 and was then removed from
// the configuration is never asked again; its entry goes once it is a
// minute old, when any other voter is looked up.
func TestTermlessPeersForgetRemovedVoters(t *testing.T) {
	var ahead atomic.Int64
	tp := termlessPeers{now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }}
	tp.saw("removed")
	tp.saw("upgrading")
	if !tp.recent("upgrading") || len(tp.seen) != 2 {
		t.Fatalf("fresh entries: %v", tp.seen)
	}
	ahead.Store(int64(termlessMemory + time.Second))
	tp.saw("old")
	if tp.recent("upgrading") || !tp.recent("old") {
		t.Fatalf("a minute on: %v", tp.seen)
	}
	if _, kept := tp.seen["removed"]; kept || len(tp.seen) != 1 {
		t.Fatalf("entries a minute on: %v, want only old's", tp.seen)
	}
}
