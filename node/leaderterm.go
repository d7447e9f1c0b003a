package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// confirmTerm tells whether this leader of term may still serve a read
// index: it asks every other voter of raft's latest configuration for its
// current term, over requests sent after the call began (termprobe.go,
// which shares them among the reads being confirmed), and succeeds
// once a quorum (this node counting, if it is still leader in term) is
// at term or below.
//
// Why not raft's VerifyLeader alone: it counts any successful reply that
// reaches the leader after the check was registered, also one to a
// heartbeat or append sent before. A leader stopped for a few seconds
// (SIGSTOP, a frozen VM, a long stall) wakes with such replies waiting in
// its sockets while the others have elected a new leader and committed
// writes; they confirmed it, and it served a read that missed a write
// acknowledged before the read began (Jepsen run 74, seed 99: a read on
// a paused leader missed a message acknowledged 1.5 s earlier).
//
// Why terms suffice: a leader of a newer term was elected by a majority
// that had moved to that term before it acknowledged anything. If a
// majority is at term or below at moments after the read began, no
// majority had moved past it before, since terms never go back and two
// majorities share a member; so every write acknowledged before the read
// began was acknowledged by this leader (or an earlier one, covered by the
// barrier of leaderReadIndex) and is in its applied index.
func (n *Node) confirmTerm(ctx context.Context, term uint64, vouch *termVouch) error {
	cfg := n.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		return err
	}
	var others []raft.Server
	voters, self, vouched := 0, false, false
	for _, s := range cfg.Configuration().Servers {
		switch {
		case s.Suffrage != raft.Voter:
			continue
		case s.ID == raft.ServerID(n.cfg.ID):
			self = true
		case vouch != nil && string(s.ID) == vouch.ID && vouch.Term <= term:
			vouched = true // asked already, by the request itself
		default:
			others = append(others, s)
		}
		voters++
	}
	if !self {
		return fmt.Errorf("%w: not a voter of the latest configuration", ErrNotLeader)
	}
	need := voters / 2 // the others a quorum needs besides this node
	if vouched {
		need--
	}
	if need <= 0 {
		others = nil
	}
	replies := make(chan termAnswer, len(others))
	for _, s := range others {
		n.terms.ask(n, s, replies)
	}
	// A voter that never answers (paused, cut off) must not hold the
	// read once this node has lost the leadership: the read goes on to
	// the next leader (onLeader), as it did when VerifyLeader failed on
	// the step-down.
	watch := time.NewTicker(leaderWatchInterval)
	defer watch.Stop()
	confirmed, failed := 0, 0
	var lastErr error
	for confirmed < need {
		if failed > len(others)-need {
			return fmt.Errorf("%w: term %d not confirmed by a quorum: %v", ErrNotLeader, term, lastErr)
		}
		select {
		case a := <-replies:
			switch {
			case a.err != nil:
				failed, lastErr = failed+1, a.err
			case a.term > term:
				failed, lastErr = failed+1, fmt.Errorf("%w: %s is in term %d, this leader in %d", errNewerTerm, a.id, a.term, term)
			default:
				confirmed++
			}
		case <-watch.C:
			if err := n.leadsIn(term); err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("%w: term %d not confirmed by a quorum: %w", ErrNotLeader, term, ctx.Err())
		}
	}
	// This node is the last of the quorum: still leader in term now.
	return n.leadsIn(term)
}

// leadsIn fails with ErrNotLeader unless this node leads in term.
func (n *Node) leadsIn(term uint64) error {
	if n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term {
		return fmt.Errorf("%w: leadership of term %d lost during the read", ErrNotLeader, term)
	}
	return nil
}

// errNewerTerm: a voter is in a newer term than this leader's.
var errNewerTerm = errors.New("a voter is in a newer term")

// errUnknownRPC: the peer does not serve the path (an older release).
var errUnknownRPC = errors.New("not served by this member's release")

// peerTerm asks voter s for its current term. A node of a release
// without /rpc/term is asked for its status, which carries the term too.
// An answer without a term is none: read as 0, it would confirm any
// leader (a status leaves the term out for a node that did not answer).
func (n *Node) peerTerm(ctx context.Context, s raft.Server) (uint64, error) {
	var got termReply
	err := errUnknownRPC
	if !n.termless.recent(s.ID) {
		// Only a 404 itself starts the minute: one remembered must not
		// be remembered again, or a voter read every minute is never
		// asked for /rpc/term once upgraded.
		if err = n.callAs(ctx, string(s.ID), string(s.Address), "GET", "/rpc/term", nil, &got); errors.Is(err, errUnknownRPC) {
			n.termless.saw(s.ID)
		}
	}
	if errors.Is(err, errUnknownRPC) {
		got = termReply{}
		err = n.callAs(ctx, string(s.ID), string(s.Address), "GET", "/rpc/stats", nil, &got)
	}
	if err == nil && got.Term == nil {
		err = fmt.Errorf("%w: %s answered without its term", errNoTerm, s.ID)
	}
	if err != nil {
		return 0, err
	}
	return *got.Term, nil
}

// termlessPeers remembers the voters that answered /rpc/term with a 404
// (an older release, during a rolling upgrade), so that each read does
// not ask them twice; after termlessMemory a voter is asked again, as it
// may have been upgraded meanwhile.
type termlessPeers struct {
	mu   sync.Mutex
	seen map[raft.ServerID]time.Time
	now  func() time.Time // time.Now if nil; tests move it on
}

const termlessMemory = time.Minute

// clock is the time now; t.mu is held.
func (t *termlessPeers) clock() time.Time {
	if t.now == nil {
		return time.Now()
	}
	return t.now()
}

func (t *termlessPeers) saw(id raft.ServerID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = make(map[raft.ServerID]time.Time)
	}
	t.seen[id] = t.clock()
}

// recent reports whether id answered a 404 less than termlessMemory
// ago. Every older entry goes, not only id's: a voter removed from the
// configuration is never asked again, and its entry would stay for ever.
func (t *termlessPeers) recent(id raft.ServerID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock()
	for other, at := range t.seen {
		if now.Sub(at) >= termlessMemory {
			delete(t.seen, other)
		}
	}
	_, ok := t.seen[id]
	return ok
}

// errNoTerm: a voter's answer did not carry its term.
var errNoTerm = errors.New("no term in the answer")

// termVouch is what a follower's read-index request says of it: its ID
// and its current term as it sent the request, after its read began. A
// voter at the leader's term or below then counts towards the quorum as
// /rpc/term's answer would, so in a three-node cluster a follower's read
// costs no request beyond its own.
type termVouch struct {
	ID   string
	Term uint64
}

// readIndexPath is the read-index request of this node, vouching for
// its current term.
func (n *Node) readIndexPath() string {
	return "/rpc/readindex?" + url.Values{"id": {n.cfg.ID}, "term": {strconv.FormatUint(n.raft.CurrentTerm(), 10)}}.Encode()
}

// vouchOf reads a read-index request's voucher; nil from a release that
// sends none, or one that does not parse.
func vouchOf(r *http.Request) *termVouch {
	q := r.URL.Query()
	t, err := strconv.ParseUint(q.Get("term"), 10, 64)
	if err != nil || q.Get("id") == "" {
		return nil
	}
	return &termVouch{ID: q.Get("id"), Term: t}
}

// termReply is /rpc/term's answer, and the term of /rpc/stats's
// (MemberStatus); nil if the answer had none.
type termReply struct {
	Term *uint64 `json:"term"`
}

func (n *Node) handleTerm(w http.ResponseWriter, r *http.Request) {
	if hook := n.onTerm.Load(); hook != nil {
		(*hook)(r)
	}
	term := n.raft.CurrentTerm()
	writeRPC(w, termReply{Term: &term}, nil)
}
