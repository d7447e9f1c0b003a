package node

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// The cluster handshake (mux.go) proves that a peer holds the secret (and,
// with cluster TLS, a certificate of the cluster CA), not which member it
// is: an attacker on the path can hand a connection meant for one member
// to another, and each end still sees a good handshake. Raft counts a
// reply as the vote or the append of the server it asked, so a leader
// whose connections to n3 and n4 reached n2 would count n2 three times,
// and commit an entry, or win an election, with a minority of five, which
// can lose acknowledged mail. Raft's replies carry their sender's ID
// (hashicorp/raft's RPC header, which every release of PowerMail fills),
// so the transport refuses a reply from any other server than the one
// asked, as if it never came. (InstallSnapshot and TimeoutNow replies
// carry no ID; a snapshot holds committed entries only, and TimeoutNow
// starts an election, which needs votes.)

// ErrWrongPeer: a reply (raft's, or a body operation's: peerid.go) came
// from another server than the one the request was for.
var ErrWrongPeer = errors.New("reply from another server than the one asked")

// answeredBy checks that a reply's header names id.
func answeredBy(id raft.ServerID, h raft.RPCHeader) error {
	if string(h.ID) != string(id) {
		return fmt.Errorf("%w: asked %s, %q answered", ErrWrongPeer, id, h.ID)
	}
	return nil
}

// AppendEntries sends one append (or heartbeat) and checks who answered.
func (t *raftTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return replyFrom(id, resp, t.NetworkTransport.AppendEntries(id, target, args, resp))
}

// RequestVote asks for a vote and checks who answered.
func (t *raftTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return replyFrom(id, resp, t.NetworkTransport.RequestVote(id, target, args, resp))
}

// RequestPreVote asks for a pre-vote and checks who answered.
func (t *raftTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return replyFrom(id, resp, t.NetworkTransport.RequestPreVote(id, target, args, resp))
}

// replyFrom passes on err, the error of an RPC whose reply is resp; when
// the RPC went through but resp names another server than id, it clears
// resp, so that raft reads nothing of it, and returns ErrWrongPeer.
func replyFrom[R any, P interface {
	*R
	raft.WithRPCHeader
}](id raft.ServerID, resp P, err error) error {
	if err != nil {
		return err
	}
	if err := answeredBy(id, resp.GetRPCHeader()); err != nil {
		var zero R
		*resp = zero
		return err
	}
	return nil
}

// checkPipelined turns a pipelined append's reply from another server
// than id into a failed one (term 0, no success), on which raft ends the
// pipeline and falls back to single appends, which report ErrWrongPeer.
func checkPipelined(id raft.ServerID, f raft.AppendFuture) {
	if f.Error() != nil {
		return
	}
	if resp := f.Response(); answeredBy(id, resp.RPCHeader) != nil {
		*resp = raft.AppendEntriesResponse{}
	}
}
