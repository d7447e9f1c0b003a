package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// Body transfer between nodes, over the authenticated cluster RPC.
//
// A body of up to smallBody bytes goes to a replica whole, over a body
// stream (bodystream.go). A larger one is an HTTP PUT that streams as a
// chunked body while the sender is still receiving it, and the trailer
// carries the SHA-256 once it is known. Either way the replica stores the
// body, checks the hash, fsyncs, and only then answers: success means a
// durable, verified copy.

// maxBodyRPC bounds one body transfer.
const maxBodyRPC = 1 << 30

const trailerHash = "Body-Hash"

func (n *Node) handlePutBody(w http.ResponseWriter, r *http.Request) {
	if n.stallBodies.Load() { // tests: behave like a paused node
		<-r.Context().Done()
		return
	}
	bw := n.bodies.NewWriter(r.Context())
	defer bw.Abort()
	if _, err := io.Copy(bw, io.LimitReader(r.Body, maxBodyRPC)); err != nil {
		writeRPC(w, nil, fmt.Errorf("receive body: %w", err))
		return
	}
	want, err := storage.ParseHash(r.Trailer.Get(trailerHash))
	if err != nil {
		writeRPC(w, nil, &fsm.Error{Kind: fsm.ErrInvalid, Msg: "body without a valid hash trailer"})
		return
	}
	h, size, err := bw.Commit(r.Context(), &want)
	if err != nil {
		writeRPC(w, nil, fmt.Errorf("store body %s: %w", want, err))
		return
	}
	writeRPC(w, map[string]any{"hash": h.String(), "size": size}, nil)
}

func (n *Node) handleGetBody(w http.ResponseWriter, r *http.Request) {
	h, err := storage.ParseHash(r.PathValue("hash"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if n.stallBodies.Load() { // tests: behave like a paused node
		<-r.Context().Done()
		return
	}
	rd, err := n.bodies.Reader(r.Context(), h)
	if err != nil {
		n.corruptServed(h, err)
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Length", fmt.Sprint(rd.Size()))
	if _, err := CopyVerified(w, rd); err != nil {
		n.corruptServed(h, err)
		// The whole-body hash fails only at the end: the last byte is
		// held back, and the response is cut short of its length.
		panic(http.ErrAbortHandler)
	}
}

// corruptServed reports this node's copy of h when a peer's read of it
// found it corrupt (err wraps storage.ErrCorrupt): unlisted, deleted and
// repaired from a good replica (scrub.go), as a scrub would, instead of
// staying first in line for every reader until the next scrub. The
// reader, which checks the hash itself, goes on to another replica.
func (n *Node) corruptServed(h storage.Hash, err error) {
	if errors.Is(err, storage.ErrCorrupt) {
		n.spawn(func(ctx context.Context) { n.reportCorrupt(ctx, h) })
	}
}

// upload streams one body to one peer. A peer that stops taking data or
// does not answer within the replica timeout (a paused or wedged node
// accepts connections but never replies) is cancelled and dropped, so it
// cannot hold up a delivery that other replicas can satisfy.
type upload struct {
	id      string
	pw      *io.PipeWriter
	req     *http.Request
	cancel  context.CancelFunc
	timeout time.Duration
	done    chan error
	err     error // first write error; the peer is dropped
}

// errReplicaTimeout reports a peer that stalled.
var errReplicaTimeout = errors.New("replica did not keep up within the replica timeout")

func (n *Node) startUpload(ctx context.Context, m fsm.Member) *upload {
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(ctx, "PUT", "http://"+m.ClusterAddr+"/rpc/body", pr)
	req.Trailer = http.Header{trailerHash: nil}
	req.ContentLength = -1
	u := &upload{id: m.ID, pw: pw, req: req, cancel: cancel, timeout: n.cfg.ReplicaTimeout, done: make(chan error, 1)}
	go func() {
		err := n.doRPC(req, m.ID, nil)
		pr.CloseWithError(err) // unblock the writer if the peer failed early
		u.done <- err
	}()
	return u
}

// write passes p on, cancelling the upload if the peer does not take it
// within the timeout.
func (u *upload) write(p []byte) {
	if u.err != nil {
		return
	}
	stall := time.AfterFunc(u.timeout, u.cancel)
	_, err := u.pw.Write(p)
	if !stall.Stop() {
		err = errReplicaTimeout
	}
	if err != nil {
		u.err = err
		u.cancel()
	}
}

// finish sends the hash trailer, ends the stream and waits (at most the
// replica timeout) for the peer's verdict.
func (u *upload) finish(h storage.Hash) error {
	defer u.cancel()
	if u.err != nil {
		// The request may be blocked writing to a peer that stopped
		// reading, which closing the pipe does not end: cancel it first.
		u.cancel()
		u.pw.CloseWithError(u.err)
		<-u.done
		return u.err
	}
	u.req.Trailer.Set(trailerHash, h.String())
	u.pw.Close()
	select {
	case err := <-u.done:
		return err
	case <-time.After(u.timeout):
		u.cancel()
		<-u.done
		return errReplicaTimeout
	}
}

// fanout writes the local copy and every live upload. A failing peer is
// dropped; a failing local write fails the delivery.
type fanout struct {
	local   io.Writer
	uploads []*upload
}

func (f *fanout) Write(p []byte) (int, error) {
	if _, err := f.local.Write(p); err != nil {
		return 0, err
	}
	for _, u := range f.uploads {
		u.write(p)
	}
	return len(p), nil
}

// copyBody sends a body this node holds to a peer (used when a streaming
// replica failed and the write quorum still needs a copy).
func (n *Node) copyBody(ctx context.Context, m fsm.Member, h storage.Hash) error {
	rd, err := n.bodies.Reader(ctx, h)
	if err != nil {
		return err
	}
	defer rd.Close()
	u := n.startUpload(ctx, m)
	buf := make([]byte, 64<<10)
	for u.err == nil {
		k, err := rd.Read(buf)
		if k > 0 {
			u.write(buf[:k])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && u.err == nil {
			u.err = err
		}
	}
	return u.finish(h)
}

// peerHealth remembers recent failures so that placement avoids a peer
// that just failed, for a short while.
type peerHealth struct {
	mu     sync.Mutex
	failed map[string]time.Time
}

const peerPenalty = 5 * time.Second

func (p *peerHealth) fail(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed == nil {
		p.failed = map[string]time.Time{}
	}
	p.failed[id] = time.Now()
}

func (p *peerHealth) ok(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Since(p.failed[id]) > peerPenalty
}

// candidates returns the other members: healthy ones first, then ones
// that failed recently, then ones whose disks are full, each group in
// placement order (see placement.go).
func (n *Node) candidates() ([]fsm.Member, error) {
	members, err := n.state.Members()
	if err != nil {
		return nil, err
	}
	var good, bad, full []fsm.Member
	for _, m := range members {
		switch {
		case m.ID == n.cfg.ID:
		case n.placement.full(m.ID):
			full = append(full, m)
		case n.health.ok(m.ID):
			good = append(good, m)
		default:
			bad = append(bad, m)
		}
	}
	n.placement.order(good)
	n.placement.order(bad)
	return append(append(good, bad...), full...), nil
}
