package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
	"powermail/storage"
)

// redirect is an attacker on the path that sends every connection for
// its address to target instead: it relays bytes, knowing no secret.
func redirect(t *testing.T, target string) raft.ServerAddress {
	t.Helper()
	return raft.ServerAddress(relayTo(t, target, func(out, in net.Conn) { io.Copy(out, in) }))
}

// relayTo listens on a new address and passes each connection made to
// it on to target: target's bytes go back unchanged, and toTarget moves
// the dialer's (in) to target (out), as the relay's attacker will.
func relayTo(t *testing.T, target string, toTarget func(out, in net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptEach(ln, func(in net.Conn) {
		defer in.Close()
		out, err := net.Dial("tcp", target)
		if err != nil {
			return
		}
		defer out.Close()
		go io.Copy(in, out)
		toTarget(out, in)
	})
	return ln.Addr().String()
}

// heartbeat is an empty AppendEntries of l's current term: one any
// follower of l answers with success, changing nothing.
func heartbeat(l *Node) *raft.AppendEntriesRequest {
	return &raft.AppendEntriesRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(l.ID()), Addr: []byte(l.advertise)},
		Term:      l.raft.CurrentTerm(), Leader: []byte(l.advertise),
	}
}

// The cluster handshake proves that the peer holds the secret, not which
// member it is, so an attacker on the path can hand a connection meant
// for one member to another. Raft counts a reply as the vote or the
// append of the server it asked: a leader whose connections to n3 (and,
// in five nodes, to n4) reached n2 would count n2 two or three times,
// and commit an entry, or win an election, with a minority. Raft's own
// replies name their sender, so an answer from another server is an
// error, as an answer that never came is.
func TestRaftRefusesAnswersFromAnotherServer(t *testing.T) {
	c := newTestCluster(t, 2)
	l := c.leader(5 * time.Second)
	f := c.follower()
	toF := redirect(t, f.advertise)

	// Control: through the same relay, to the server that answers.
	var resp raft.AppendEntriesResponse
	if err := l.transport.AppendEntries(raft.ServerID(f.ID()), toF, heartbeat(l), &resp); err != nil || !resp.Success {
		t.Fatalf("heartbeat to %s: %v, %+v", f.ID(), err, resp)
	}

	resp = raft.AppendEntriesResponse{}
	if err := l.transport.AppendEntries("n3", toF, heartbeat(l), &resp); err == nil {
		t.Errorf("heartbeat to n3 answered by %s taken: success %v", resp.ID, resp.Success)
	}
	var vote raft.RequestVoteResponse
	stale := &raft.RequestVoteRequest{RPCHeader: heartbeat(l).RPCHeader, Term: 0, Candidate: []byte(l.advertise)}
	if err := l.transport.RequestVote("n3", toF, stale, &vote); err == nil {
		t.Errorf("vote of n3 answered by %s taken", vote.ID)
	}
	var pre raft.RequestPreVoteResponse
	if err := l.transport.RequestPreVote("n3", toF, &raft.RequestPreVoteRequest{RPCHeader: stale.RPCHeader}, &pre); err == nil {
		t.Errorf("pre-vote of n3 answered by %s taken", pre.ID)
	}

	p, err := l.transport.AppendEntriesPipeline("n3", toF)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.AppendEntries(heartbeat(l), &raft.AppendEntriesResponse{}); err != nil {
		t.Fatal(err)
	}
	select {
	case fut := <-p.Consumer():
		if fut.Error() == nil && fut.Response().Success {
			t.Errorf("pipelined append to n3 answered by %s taken as a success", fut.Response().ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pipelined reply")
	}
}

// storeBody keeps data in n's body store.
func storeBody(t *testing.T, n *Node, data []byte) storage.Hash {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	bw := n.bodies.NewWriter(ctx)
	defer bw.Abort()
	if _, err := bw.Write(data); err != nil {
		t.Fatal(err)
	}
	h, _, err := bw.Commit(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A body operation meant for one member but carried to another by an
// attacker on the path must fail as the member's would: a delivery that
// took C's copy for n3's would list a copy that does not exist, and
// acknowledge the message with one real copy fewer than W. With cluster
// TLS the relay passes the TLS session on as it is, and C holds a
// certificate of the cluster CA.
func TestBodyOperationsRefuseAnotherServer(t *testing.T) {
	t.Run("plain", func(t *testing.T) { bodyOperationsThroughARelay(t, nil) })
	ca := newTestCA(t, "cluster CA")
	t.Run("TLS", func(t *testing.T) {
		bodyOperationsThroughARelay(t, func(cfg *Config) { cfg.ClusterTLS = ca.config(t, cfg.ID) })
	})
}

func bodyOperationsThroughARelay(t *testing.T, tweak func(*Config)) {
	c := newTestClusterWith(t, 2, tweak)
	a := c.leader(5 * time.Second)
	other := c.follower()
	relay := string(redirect(t, other.advertise))
	ctx := ctxT(t, 30*time.Second)

	small := []byte("a body for n3, small enough for a body stream\r\n")
	big := bytes.Repeat([]byte("a body for n3, sent as an HTTP PUT\r\n"), smallBody/32)
	hSmall, hBig := storeBody(t, a, small), storeBody(t, a, big)
	storeBody(t, other, small)

	// Control: through the relay, to the member that answers.
	self := fsm.Member{ID: other.ID(), ClusterAddr: relay}
	if err := a.putBody(ctx, self, hSmall, small); err != nil {
		t.Fatalf("body stream to %s: %v", other.ID(), err)
	}
	if err := a.copyBody(ctx, self, hBig); err != nil {
		t.Fatalf("PUT /rpc/body to %s: %v", other.ID(), err)
	}
	if err := a.verifyOn(ctx, self, hSmall.String()); err != nil {
		t.Fatalf("verify on %s: %v", other.ID(), err)
	}

	n3 := fsm.Member{ID: "n3", ClusterAddr: relay}
	if err := a.putBody(ctx, n3, hSmall, small); err == nil {
		t.Errorf("body stream to n3, answered by %s, taken", other.ID())
	}
	if err := a.copyBody(ctx, n3, hBig); err == nil {
		t.Errorf("PUT /rpc/body to n3, answered by %s, taken", other.ID())
	}
	if err := a.verifyOn(ctx, n3, hSmall.String()); err == nil {
		t.Errorf("verify of n3's copy, answered by %s, taken", other.ID())
	}
	if err := a.fetchOn(ctx, n3, hSmall.String(), int64(len(small)), []string{a.advertise}); err == nil {
		t.Errorf("fetch on n3, answered by %s, taken", other.ID())
	}
	if err := a.dropOn(ctx, n3, hSmall.String()); err == nil {
		t.Errorf("drop on n3, answered by %s, taken", other.ID())
	}
}

// olderRelease serves the cluster port as a node of a release before
// peerid.go: its answers name no one, and its body streams take only
// 'P' (any other op ends the stream). It counts the streams it ends.
type olderRelease struct {
	addr   string
	hungUp atomic.Int32
	puts   atomic.Int32 // PUT /rpc/body requests
}

func startOlderRelease(t *testing.T, d clusterDialer) *olderRelease {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &olderRelease{addr: ln.Addr().String()}
	m := newMux(ln, d, slog.New(slog.NewTextHandler(io.Discard, nil)), o.bodyStream)
	go m.serve()
	t.Cleanup(func() { m.close() })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/rpc/body" {
			o.puts.Add(1)
		}
		w.Write([]byte("{}\n"))
	})}
	go srv.Serve(m.rpc)
	t.Cleanup(func() { srv.Close() })
	return o
}

func (o *olderRelease) bodyStream(conn net.Conn) {
	go func() {
		defer conn.Close()
		var hdr [bodyHeaderLen]byte
		for {
			if _, err := io.ReadFull(conn, hdr[:]); err != nil {
				return
			}
			if hdr[0] != bodyOpPut {
				o.hungUp.Add(1)
				return
			}
			io.CopyN(io.Discard, conn, int64(binary.BigEndian.Uint32(hdr[1+hashLen:])))
			conn.Write([]byte{bodyReplyOK})
		}
	}()
}

// A node of an older release answers without naming itself; until every
// node names itself its answers are taken, as before. Its body streams
// end on an upload that asks for a name, and the body goes as a PUT
// instead (never as an upload that asks for none, which an attacker who
// cut the stream could force on a member of this release).
func TestBodyOperationsOfAnOlderRelease(t *testing.T) {
	c := newTestCluster(t, 1)
	a := c.leader(5 * time.Second)
	old := startOlderRelease(t, a.dialer())
	ctx := ctxT(t, 30*time.Second)
	m := fsm.Member{ID: "n9", ClusterAddr: old.addr}

	for i := range 2 {
		data := []byte(fmt.Sprintf("body %d for a node of an older release\r\n", i))
		if err := a.putBody(ctx, m, storage.HashBytes(data), data); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	if got := old.hungUp.Load(); got != 1 {
		t.Errorf("%d body streams tried, want 1 (then PUTs for a while)", got)
	}
	if got := old.puts.Load(); got != 2 {
		t.Errorf("%d PUT /rpc/body, want 2", got)
	}
	if err := a.verifyOn(ctx, m, storage.HashBytes(nil).String()); err != nil {
		t.Errorf("verify on a node of an older release: %v", err)
	}
}

// A node of an older release uploads with 'P' and reads a one-byte
// answer; a node of this release still gives it that.
func TestBodyStreamAnswersAnOlderRelease(t *testing.T) {
	c := newTestCluster(t, 2)
	a := c.leader(5 * time.Second)
	b := c.follower()
	ctx := ctxT(t, 10*time.Second)
	conn, err := a.dialer().dial(ctx, b.advertise, kindBody)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	data := []byte("a body from a node of an older release\r\n")
	h := storage.HashBytes(data)
	var hdr [bodyHeaderLen]byte
	hdr[0] = bodyOpPut
	copy(hdr[1:], h[:])
	binary.BigEndian.PutUint32(hdr[1+hashLen:], uint32(len(data)))
	if _, err := conn.Write(append(hdr[:], data...)); err != nil {
		t.Fatal(err)
	}
	var reply [1]byte
	if _, err := io.ReadFull(conn, reply[:]); err != nil || reply[0] != bodyReplyOK {
		t.Fatalf("answer %v, %v; want %d", reply, err, bodyReplyOK)
	}
	// Nothing follows the one byte: the next upload's answer is its own.
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if k, err := conn.Read(reply[:]); k != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("more after the answer: %d bytes, %v", k, err)
	}
	if err := b.bodies.Verify(ctx, h); err != nil {
		t.Fatal(err)
	}
}

// A member is alive for repair while it answers the storage poll, and
// a nonvoter may become a voter while it answers the voter check: an
// answer from another member, carried there by a relay, must count for
// neither, or a dead member's bodies would never be repaired.
func TestLivenessProbesRefuseAnotherServer(t *testing.T) {
	c := newTestClusterWith(t, 2, func(cfg *Config) { cfg.PeerPollInterval = 50 * time.Millisecond })
	a := c.leader(5 * time.Second)
	other := c.follower()
	relay := string(redirect(t, other.advertise))
	ctx := ctxT(t, 30*time.Second)

	mustApply(t, a, &fsm.MemberSet{Member: fsm.Member{ID: "n3", ClusterAddr: relay}})
	if err := a.raft.AddNonvoter("n3", raft.ServerAddress(relay), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a storage poll of "+other.ID(), func() bool { _, ok := a.placement.free(other.ID()); return ok })
	time.Sleep(300 * time.Millisecond) // several polls
	if _, ok := a.placement.free("n3"); ok {
		t.Errorf("the storage poll of n3, answered by %s, was taken", other.ID())
	}
	v, err := a.viewVoters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !v.answering[raft.ServerID(other.ID())] {
		t.Errorf("%s does not answer the voter check", other.ID())
	}
	if v.answering["n3"] {
		t.Errorf("the voter check of n3, answered by %s, was taken", other.ID())
	}
}
