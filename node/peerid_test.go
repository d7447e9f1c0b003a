package node

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// redirect is an attacker on the path that sends every connection for
// its address to target instead: it relays bytes, knowing no secret.
func redirect(t *testing.T, target string) raft.ServerAddress {
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
		io.Copy(out, in)
	})
	return raft.ServerAddress(ln.Addr().String())
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
