package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"powermail/fsm"
)

// The cluster RPC is HTTP/1.1 over authenticated mux connections. Nodes
// use it to forward writes to the leader, to ask the leader for its read
// index, to forward joins and removals, and to collect status.

const maxRPCBody = 64 << 20

func newRPCClient(d clusterDialer, dials prometheus.Counter) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			dials.Inc()
			return d.dial(ctx, addr, kindRPC)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// A whole small body and its request header leave in one write
		// (the default buffer is 4 KiB, smaller than most mail).
		WriteBufferSize: 32 << 10,
	}}
}

// rpcReply is the envelope of every RPC answer.
type rpcReply struct {
	Code  string          `json:"code,omitempty"` // fsm error code or a node code
	Error string          `json:"error,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	Index uint64          `json:"index,omitempty"` // raft index of an applied entry
}

// Node-level error codes on the wire.
const (
	codeNotLeader     = "not_leader"
	codeNoLeader      = "no_leader"
	codeIndeterminate = "indeterminate"
	// codeConfigChanged is ErrConfigurationChanged: a removal refused
	// because the configuration kept changing, or a join whose ID was
	// removed while it was made, forwarded from the leader. A release
	// that does not know the code takes it as an internal error (500 at
	// its admin API, not retried there; a joiner or a wiped node's leave
	// retries it all the same).
	codeConfigChanged = "config_changed"
)

func replyError(err error) rpcReply {
	code := fsm.Code(err)
	switch {
	case code != "":
	case errors.Is(err, ErrNotLeader):
		code = codeNotLeader
	case errors.Is(err, ErrNoLeader):
		code = codeNoLeader
	case errors.Is(err, ErrIndeterminate):
		code = codeIndeterminate
	case errors.Is(err, ErrConfigurationChanged):
		code = codeConfigChanged
	default:
		code = "internal"
	}
	return rpcReply{Code: code, Error: err.Error()}
}

func (r rpcReply) err() error {
	switch r.Code {
	case "":
		return nil
	case codeNotLeader:
		return fmt.Errorf("%w: %s", ErrNotLeader, r.Error)
	case codeNoLeader:
		return fmt.Errorf("%w: %s", ErrNoLeader, r.Error)
	case codeIndeterminate:
		return fmt.Errorf("%w: %s", ErrIndeterminate, r.Error)
	case codeConfigChanged:
		return fmt.Errorf("%w: %s", ErrConfigurationChanged, r.Error)
	}
	return fsm.FromCode(r.Code, r.Error)
}

// untilRaft answers every cluster RPC "unavailable" until raft is
// started. The RPC server listens first (raft shares its port), and a peer
// request that needs raft in that window crashed a restarting node (found
// by the jepsen harness).
func (n *Node) untilRaft(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !n.raftUp.Load() {
			writeRPC(w, nil, fmt.Errorf("%w: node %s is starting", ErrUnavailable, n.cfg.ID))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (n *Node) rpcHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /rpc/apply", n.rpcApply)
	mux.HandleFunc("GET /rpc/readindex", func(w http.ResponseWriter, r *http.Request) {
		idx, err := n.leaderReadIndex(r.Context(), vouchOf(r))
		writeRPC(w, idx, err)
	})
	mux.HandleFunc("POST /rpc/join", func(w http.ResponseWriter, r *http.Request) {
		var req JoinRequest
		if err := decodeBody(r, &req); err != nil {
			writeRPC(w, nil, err)
			return
		}
		writeRPC(w, nil, n.joinLocal(r.Context(), req))
	})
	mux.HandleFunc("POST /rpc/remove", func(w http.ResponseWriter, r *http.Request) {
		var req removeRequest
		if err := decodeBody(r, &req); err != nil {
			writeRPC(w, nil, err)
			return
		}
		writeRPC(w, nil, n.removeLocal(r.Context(), req.ID, req.Force))
	})
	mux.HandleFunc("PUT /rpc/body", n.handlePutBody)
	mux.HandleFunc("GET /rpc/body/{hash}", n.handleGetBody)
	mux.HandleFunc("POST /rpc/gc/{hash}", n.handleGC)
	mux.HandleFunc("POST /rpc/repair", func(w http.ResponseWriter, r *http.Request) {
		if hook := n.onRepairKick.Load(); hook != nil && (*hook)(r) {
			return
		}
		n.kickRepair()
		writeRPC(w, nil, nil)
	})
	n.repairRPC(mux)
	mux.HandleFunc("POST /rpc/collect", n.handleCollect)
	mux.HandleFunc("GET /rpc/statedigest/{id}", n.handleStateDigest)
	mux.HandleFunc("GET /rpc/storage", func(w http.ResponseWriter, r *http.Request) {
		st, err := n.bodies.Stats(r.Context())
		writeRPC(w, st, err)
	})
	mux.HandleFunc("GET /rpc/term", n.handleTerm)
	mux.HandleFunc("GET /rpc/stats", func(w http.ResponseWriter, r *http.Request) {
		writeRPC(w, n.localStats(), nil)
	})
	return mux
}

func (n *Node) rpcApply(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody))
	if err != nil {
		writeRPC(w, nil, err)
		return
	}
	// A follower encodes under the setting as it has applied it; one
	// lowered since must not reach the log in the newer encoding. And an
	// entry this leader cannot decode (a newer release's command, a bug)
	// would stop every replica that reads it, so it never reaches the log.
	//
	// Only the leader judges: a node that is not (a follower whose state
	// lags, or a wiped node restarted at the address the sender still
	// takes for the leader's) answers "not leader", which the sender
	// retries elsewhere. Its judgement of the entry would be a definite
	// refusal, which ends a delivery's retries with 451 although an
	// earlier try, cut off, may have committed it (found by jepsen).
	var v any
	var idx uint64
	if !n.IsLeader() {
		err = ErrNotLeader
	} else if err = n.state.CheckCommand(data); err == nil {
		err = n.checkEncoding(r.Context(), data)
	}
	if err == nil {
		v, idx, err = n.applyLocal(r.Context(), data)
	}
	rep := rpcReply{Index: idx}
	if err != nil {
		rep = replyError(err)
		rep.Index = idx
	} else if v != nil {
		rep.Value, _ = json.Marshal(v)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

// checkEncoding refuses an entry in a newer encoding than the cluster
// setting allows. A follower that has applied a raise this leader has
// only committed is right: on a mismatch the leader first catches up
// with everything committed, then judges again. (Best effort against a
// setting being lowered: an entry proposed while the lowering is in the
// log but not applied still goes in.)
//
// Catching up is a raft barrier, not a wait for the commit index: raft
// hands neither its no-op nor barrier entries to the FSM, so when the log
// ends in one, the state never reaches the commit index until the next
// command is committed.
func (n *Node) checkEncoding(ctx context.Context, data []byte) error {
	err := fsm.CheckEncoding(data, n.commandEncoding())
	if err == nil {
		return nil
	}
	if berr := n.applyBarrier(ctx); berr != nil {
		return err
	}
	return fsm.CheckEncoding(data, n.commandEncoding())
}

// applyBarrier waits until this leader's state has applied every entry
// raft committed before the call, or ctx ends.
func (n *Node) applyBarrier(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- n.raft.Barrier(n.cfg.ApplyTimeout).Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forwardApply sends an encoded command to the leader and returns its
// value and raft index.
func (n *Node) forwardApply(ctx context.Context, addr string, data []byte) (any, uint64, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+"/rpc/apply", bytes.NewReader(data))
	if err != nil {
		return nil, 0, err
	}
	var rep rpcReply
	if err := n.roundTrip(req, "", &rep); err != nil {
		return nil, 0, err
	}
	var v any
	if len(rep.Value) > 0 {
		if err := json.Unmarshal(rep.Value, &v); err != nil {
			return nil, 0, err
		}
	}
	return v, rep.Index, rep.err()
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, maxRPCBody)).Decode(v); err != nil {
		return &fsm.Error{Kind: fsm.ErrInvalid, Msg: "bad request body: " + err.Error()}
	}
	return nil
}

func writeRPC(w http.ResponseWriter, v any, err error) {
	var rep rpcReply
	if err != nil {
		rep = replyError(err)
	} else if v != nil {
		rep.Value, _ = json.Marshal(v)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

// call performs one RPC against addr and decodes the reply value into out.
func (n *Node) call(ctx context.Context, addr, method, path string, body []byte, out any) error {
	return n.callAs(ctx, "", addr, method, path, body, out)
}

// callAs is call that refuses a reply from another member than id
// (peerid.go; "" takes any).
func (n *Node) callAs(ctx context.Context, id, addr, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	return n.doRPC(req, id, out)
}

// doRPC sends a prepared request and decodes the reply envelope, which
// must come from member id ("": any).
func (n *Node) doRPC(req *http.Request, id string, out any) error {
	var rep rpcReply
	if err := n.roundTrip(req, id, &rep); err != nil {
		return err
	}
	if err := rep.err(); err != nil {
		return err
	}
	if out != nil && len(rep.Value) > 0 {
		return json.Unmarshal(rep.Value, out)
	}
	return nil
}

// roundTrip sends req and decodes the reply envelope, without judging
// it, once it is sure the reply came from member id ("": any).
func (n *Node) roundTrip(req *http.Request, id string, rep *rpcReply) error {
	addr, path := req.URL.Host, req.URL.Path
	resp, err := n.rpc.Do(req)
	if err != nil {
		return fmt.Errorf("rpc %s to %s: %w", path, addr, err)
	}
	defer resp.Body.Close()
	if err := answeredAs(id, resp.Header.Get(headerNode)); err != nil {
		return fmt.Errorf("rpc %s to %s: %w", path, addr, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("rpc %s to %s: %w", path, addr, errUnknownRPC)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxRPCBody)).Decode(rep); err != nil {
		return fmt.Errorf("rpc %s to %s: bad reply: %w", path, addr, err)
	}
	return nil
}

// leaderAddr returns the leader's cluster address, or ErrNoLeader.
func (n *Node) leaderAddr() (string, error) {
	addr, _ := n.raft.LeaderWithID()
	if addr == "" {
		return "", ErrNoLeader
	}
	return string(addr), nil
}

// onLeader runs local when this node leads, and otherwise remote against
// the leader's address. It retries while there is no leader or leadership
// moves, until ctx ends; such failures mean nothing was applied. A node
// removed from the cluster does not retry: it fails with ErrRemoved.
func (n *Node) onLeader(ctx context.Context, local func() error, remote func(addr string) error) error {
	backoff := 20 * time.Millisecond
	for {
		if err := n.removedNow(); err != nil {
			return err
		}
		var err error
		if n.raft.State() == raft.Leader {
			err = local()
		} else if addr, lerr := n.leaderAddr(); lerr != nil {
			err = lerr
		} else {
			err = remote(addr)
		}
		if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !isConnRefused(err) {
			return err
		}
		if rerr := n.removedErr(); rerr != nil {
			// No leader will ever answer: waiting out ctx would only
			// hold the client (removed.go).
			return fmt.Errorf("%w (%v)", rerr, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// errLeaderMoved: this node learned of another leader (or lost its
// leader) while a request to the old one was in flight.
var errLeaderMoved = errors.New("leader changed while the request was in flight")

// toLeader runs fn against the leader at addr with a context that ends as
// soon as this node no longer sees addr as its leader. A request to an
// old leader cut off by a partition would otherwise hang until the heal,
// stalling the majority side (found by the jepsen harness); fn's error
// then wraps errLeaderMoved, and the caller decides whether a retry is
// safe.
func (n *Node) toLeader(ctx context.Context, addr string, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(leaderWatchInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if cur, _ := n.raft.LeaderWithID(); string(cur) != addr {
					cancel(errLeaderMoved)
					return
				}
			}
		}
	}()
	err := fn(ctx)
	if err != nil && errors.Is(context.Cause(ctx), errLeaderMoved) {
		return fmt.Errorf("%w (%s): %v", errLeaderMoved, addr, err)
	}
	return err
}

// leaderWatchInterval is how often toLeader checks who leads.
const leaderWatchInterval = 100 * time.Millisecond

// isConnRefused reports a dial failure: the request never reached a peer,
// so it is safe to retry.
func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
