package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"

	"powermail/fsm"
	"powermail/storage"
)

// smallBody is the largest body replicate buffers whole. Most mail is
// smaller: such a body goes to each peer as one message on a body stream
// (bodystream.go), with its length and hash up front, instead of a chunked
// stream fed through a pipe (a flushed write per chunk, a goroutine
// hand-off per write). Larger bodies stream, so memory per delivery stays
// bounded by this size whatever the message size.
const smallBody = 64 << 10

// replicate writes the body locally and to peers, returning the replica
// set once it reaches the write quorum.
func (n *Node) replicate(ctx context.Context, s fsm.Settings, body io.Reader) (storage.Hash, int64, []string, error) {
	var zero storage.Hash
	peers, err := n.candidates()
	if err != nil {
		return zero, 0, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(peers)+1 < s.WriteQuorum {
		return zero, 0, nil, fmt.Errorf("%w: %d nodes for a write quorum of %d", ErrUnavailable, len(peers)+1, s.WriteQuorum)
	}
	want := min(s.Replicas-1, len(peers))
	buf := n.getBodyBuf()
	defer n.bodyBufs.Put(buf)
	// io.ReadFull reports a short body ending in io.EOF as
	// io.ErrUnexpectedEOF, but passes on an io.ErrUnexpectedEOF of the
	// reader's own unchanged: go-smtp's DATA reader and readers of IMAP
	// literals say that when the client's connection is lost. Only a
	// real io.EOF ends the body; anything else is a failed read, and the
	// truncated message must not be stored.
	src := &endReader{r: body}
	k, err := io.ReadFull(src, *buf)
	var h storage.Hash
	var size int64
	var replicas []string
	switch {
	case src.eof && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		h, size, replicas, err = n.replicateSmall(ctx, peers[:want], (*buf)[:k])
	case err != nil:
		return zero, 0, nil, fmt.Errorf("%w: store body: %v", ErrUnavailable, err)
	default:
		h, size, replicas, err = n.replicateStream(ctx, peers[:want], io.MultiReader(bytes.NewReader(*buf), body))
	}
	if diskFull(err) {
		return zero, 0, nil, fmt.Errorf("%w: %w: store body: %v", ErrUnavailable, ErrInsufficientStorage, err)
	}
	if err != nil {
		return zero, 0, nil, fmt.Errorf("%w: store body: %v", ErrUnavailable, err)
	}
	// A replica failed: copy from the local store to spare peers until
	// the write quorum holds.
	for _, m := range peers[want:] {
		if len(replicas) >= s.WriteQuorum {
			break
		}
		if err := n.copyBody(ctx, m, h); err != nil {
			n.health.fail(m.ID)
			continue
		}
		replicas = append(replicas, m.ID)
	}
	if len(replicas) < s.WriteQuorum {
		err := fmt.Errorf("%w: %d of %d required replicas reachable", ErrUnavailable, len(replicas), s.WriteQuorum)
		// A peer that refused may have filled since it was last polled
		// (its refusal does not say why): ask the ones that refused
		// for their stats now, so that a shortfall of room is reported
		// as one, and the next delivery knows.
		n.pollPeers(ctx, slices.DeleteFunc(slices.Clone(peers), func(m fsm.Member) bool {
			return slices.Contains(replicas, m.ID) || n.placement.full(m.ID)
		}))
		if n.peersShortOfRoom(peers, s.WriteQuorum) {
			// Not a passing failure of some peer: too few nodes have
			// room for a copy, so say so (452 4.3.1 rather than 451).
			err = fmt.Errorf("%w: %w", err, errPeersFull)
		}
		return zero, 0, nil, err
	}
	return h, size, replicas, nil
}

// diskFull reports whether err says this node's disk is full: the body
// store's reserve refused the write (storage.ErrNoSpace, nothing written),
// or the disk filled anyway and the write failed with ENOSPC (which fails
// the store). Either is RFC 3463's X.3.1, "mail system full".
func diskFull(err error) bool {
	return errors.Is(err, storage.ErrNoSpace) || errors.Is(err, syscall.ENOSPC)
}

// errPeersFull: this node has room, but too few others do for the write
// quorum's copies.
var errPeersFull = fmt.Errorf("%w: the other nodes are at their free-space reserve", ErrInsufficientStorage)

// peersShortOfRoom reports whether this node, which has room, and the
// others that had room when last polled (or were not polled yet) are
// fewer than w, while enough nodes exist: then full peers are to blame.
func (n *Node) peersShortOfRoom(others []fsm.Member, w int) bool {
	room := 1
	for _, m := range others {
		if !n.placement.full(m.ID) {
			room++
		}
	}
	return len(others)+1 >= w && room < w
}

// CheckSpace tells whether the cluster could keep the write quorum's
// copies of a body of size bytes (0: unknown) received here, for SMTP's
// MAIL command (RFC 1870 §6.1). It returns an error wrapping
// ErrInsufficientStorage and ErrUnavailable when this node's body store
// is at its free-space reserve or failed on a full disk, or when too few
// peers had room at their last poll; ErrUnavailable alone when the store
// failed otherwise; nil otherwise, also when a check itself failed: Deliver
// decides then.
func (n *Node) CheckSpace(size int64) error {
	if err := n.bodies.Failed(); err != nil {
		// Every delivery fails until the store is reopened
		// (bodyreopen.go); one that failed on a full disk is a full disk.
		if diskFull(err) {
			return fmt.Errorf("%w: %w: body store failed: %v", ErrUnavailable, ErrInsufficientStorage, err)
		}
		return fmt.Errorf("%w: body store failed: %v", ErrUnavailable, err)
	}
	if err := n.bodies.CheckSpace(size); errors.Is(err, storage.ErrNoSpace) {
		return fmt.Errorf("%w: %w: %v", ErrUnavailable, ErrInsufficientStorage, err)
	}
	s, err := n.state.Settings()
	if err != nil {
		return nil
	}
	members, err := n.state.Members()
	if err != nil {
		return nil
	}
	others := slices.DeleteFunc(members, func(m fsm.Member) bool { return m.ID == n.cfg.ID })
	if n.peersShortOfRoom(others, s.WriteQuorum) {
		return fmt.Errorf("%w: %w", ErrUnavailable, errPeersFull)
	}
	return nil
}

// endReader records whether its reader ended with io.EOF itself.
type endReader struct {
	r   io.Reader
	eof bool
}

func (e *endReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

func (n *Node) getBodyBuf() *[]byte {
	if b, ok := n.bodyBufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, smallBody)
	return &b
}

// replicateSmall stores a whole body here and on peers at the same time.
// It fails only if the local copy fails; a failed peer is left out of the
// returned replica set. No upload outlives it, so data may be reused.
func (n *Node) replicateSmall(ctx context.Context, peers []fsm.Member, data []byte) (h storage.Hash, size int64, replicas []string, err error) {
	h = storage.HashBytes(data)
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, m := range peers {
		wg.Go(func() { errs[i] = n.putBody(ctx, m, h, data) })
	}
	local := n.bodies.NewWriter(ctx)
	defer local.Abort()
	_, err = local.Write(data)
	if err == nil {
		_, _, err = local.Commit(ctx, &h)
	}
	wg.Wait()
	replicas = []string{n.cfg.ID}
	for i, m := range peers {
		if errs[i] != nil {
			n.health.fail(m.ID)
			continue
		}
		replicas = append(replicas, m.ID)
	}
	return h, int64(len(data)), replicas, err
}

// putBody sends a whole body to a peer over a body stream. The peer
// answers only once its copy is verified and fsynced.
func (n *Node) putBody(ctx context.Context, m fsm.Member, h storage.Hash, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ReplicaTimeout)
	defer cancel()
	err := n.bodyPool.send(ctx, m.ClusterAddr, m.ID, h, data)
	if errors.Is(err, errOldBodyPeer) {
		err = n.putBodyHTTP(ctx, m, h, data)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w: %w", errReplicaTimeout, err)
	}
	return err
}

// putBodyHTTP sends a whole body to a peer as a PUT /rpc/body: to a peer
// of an older release, whose body stream answers name no one.
func (n *Node) putBodyHTTP(ctx context.Context, m fsm.Member, h storage.Hash, data []byte) error {
	u := n.startUpload(ctx, m)
	u.write(data)
	return u.finish(h)
}

// replicateStream streams a body of any size to the local store and to
// peers at once.
func (n *Node) replicateStream(ctx context.Context, peers []fsm.Member, body io.Reader) (storage.Hash, int64, []string, error) {
	local := n.bodies.NewWriter(ctx)
	defer local.Abort()
	f := &fanout{local: local}
	for _, m := range peers {
		f.uploads = append(f.uploads, n.startUpload(ctx, m))
	}
	_, copyErr := io.Copy(f, body)
	var h storage.Hash
	var size int64
	if copyErr == nil {
		h, size, copyErr = local.Commit(ctx, nil)
	}
	replicas := []string{n.cfg.ID}
	for _, u := range f.uploads {
		peerFailed := u.err != nil // before the delivery's own failure is set
		if copyErr != nil {
			u.err = copyErr
		}
		if err := u.finish(h); err != nil {
			// Only the peer's own failure counts against it: a client
			// that went away or a full local disk says nothing of it.
			if peerFailed || copyErr == nil {
				n.health.fail(u.id)
			}
			continue
		}
		replicas = append(replicas, u.id)
	}
	return h, size, replicas, copyErr
}
