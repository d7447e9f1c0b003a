package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"powermail/storage"
)

// ErrBodyUnavailable means no replica of a body could be read.
var ErrBodyUnavailable = fmt.Errorf("%w: no readable replica of the body", ErrUnavailable)

// OpenBody returns a reader of a message body. A local copy is read if
// this node has an intact one. Otherwise the body is read from the
// replicas the directory lists, in turn (remoteread.go): a small one into
// memory, a large one into the local store; either way its hash is
// checked before a byte is returned, and a replica that is down or
// returns corrupt data is skipped. A copy fetched into the store is not
// listed as a replica, so it acts as a cache: the orphan sweep removes it
// after the grace period. Corruption met in the middle of reading the
// local copy is reported (see scrub.go) and the read goes on from a
// replica, at the same offset: every byte returned was verified. A failed
// store (storage.ErrFailed) is read around the same way.
func (n *Node) OpenBody(ctx context.Context, hash string) (Body, error) {
	h, err := storage.ParseHash(hash)
	if err != nil {
		return nil, err
	}
	rd, err := n.bodies.Reader(ctx, h)
	switch {
	case err == nil:
		return newWatchedBody(ctx, n, rd), nil
	case errors.Is(err, storage.ErrCorrupt):
		n.reportCorrupt(ctx, h)
	case errors.Is(err, storage.ErrFailed):
		// The store refuses every read until it is reopened
		// (bodyreopen.go); the other replicas still hold the body. A
		// local Reader that a reopen closed fails the same way.
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	return n.openRemote(ctx, h)
}

// watchedBody falls back to a replica, once, when the local copy turns
// out corrupt in the middle of a read, or the store fails under it (a
// failed store refuses every read until it is reopened). The replica's
// copy is opened as any body this node does not hold (openRemote): into
// memory, into the store, or, when the store cannot take it (at its
// reserve, or failed), streamed.
type watchedBody struct {
	Body   // the local copy's *storage.Reader, then the replica's
	h      storage.Hash
	n      *Node
	ctx    context.Context
	off    int64
	failed bool
}

func newWatchedBody(ctx context.Context, n *Node, rd *storage.Reader) *watchedBody {
	return &watchedBody{Body: rd, h: rd.Hash(), n: n, ctx: ctx}
}

// Seek moves the read position, which a fallback resumes from.
func (b *watchedBody) Seek(offset int64, whence int) (int64, error) {
	pos, err := b.Body.Seek(offset, whence)
	if err == nil {
		b.off = pos
	}
	return pos, err
}

func (b *watchedBody) Read(p []byte) (int, error) {
	k, err := b.Body.Read(p)
	b.off += int64(k)
	corrupt := errors.Is(err, storage.ErrCorrupt)
	if err == nil || b.failed || !corrupt && !errors.Is(err, storage.ErrFailed) {
		return k, err
	}
	b.failed = true
	if corrupt {
		b.n.reportCorrupt(b.ctx, b.h)
	}
	if b.off >= b.Body.Size() {
		// The whole-body hash failed at the end, or could not be
		// checked there: every byte handed out is suspect, and a good
		// copy can only be read from the start.
		return k, err
	}
	next, oerr := b.n.openRemote(b.ctx, b.h)
	if oerr != nil {
		return k, errors.Join(err, oerr)
	}
	if _, serr := next.Seek(b.off, io.SeekStart); serr != nil {
		next.Close()
		return k, errors.Join(err, serr)
	}
	b.Body.Close()
	b.Body = next
	if k > 0 {
		return k, nil
	}
	return b.Read(p)
}

// openBody is OpenBody for the node's own readers (the outbound queue,
// DSNs, DKIM, the admin API's raw message): a node at its free-space
// reserve, or whose store failed, reads a body held elsewhere around its
// store too, instead of failing to copy it in.
func (n *Node) openBody(ctx context.Context, hash string) (Body, error) {
	return n.OpenBody(ctx, hash)
}

// eachReplica calls try with the cluster address of each of replicas (the
// body record's list) other than this node, in turn, until one call
// succeeds. A replica that fails is marked unhealthy, and those that
// failed recently are tried last: a wedged replica costs each read the
// replica timeout, and would cost every later read as much again while
// it stays wedged.
func (n *Node) eachReplica(h storage.Hash, replicas []string, try func(id, addr string) error) error {
	members, err := n.state.Members()
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for _, m := range members {
		addr[m.ID] = m.ClusterAddr
	}
	var errs []error
	for _, id := range n.healthyFirst(replicas) {
		if id == n.cfg.ID || addr[id] == "" {
			continue
		}
		if err := try(id, addr[id]); err != nil {
			if errors.As(err, new(localError)) {
				// This node's store refused the copy: the replica
				// did nothing wrong, and the next would be refused
				// as well.
				return err
			}
			errs = append(errs, fmt.Errorf("from %s: %w", id, err))
			n.health.fail(id)
			continue
		}
		return nil
	}
	return fmt.Errorf("%w: %s: %v", ErrBodyUnavailable, h, errors.Join(errs...))
}

// healthyFirst is ids, those that did not fail recently first, each
// group in the order given.
func (n *Node) healthyFirst(ids []string) []string {
	out := make([]string, 0, len(ids))
	var failed []string
	for _, id := range ids {
		if n.health.ok(id) {
			out = append(out, id)
		} else {
			failed = append(failed, id)
		}
	}
	return append(out, failed...)
}

// getBody asks the replica at addr for h and returns the response, whose
// body the caller reads (and closes) after checking the hash.
// getBody requests a replica's copy of h. A replica that sends nothing
// for the replica timeout, before its answer or within it, is given up.
func (n *Node) getBody(ctx context.Context, addr string, h storage.Hash) (*http.Response, error) {
	ctx, guard := newStallGuard(ctx, n.cfg.ReplicaTimeout)
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/rpc/body/"+h.String(), nil)
	if err != nil {
		guard.Close()
		return nil, err
	}
	resp, err := n.rpc.Do(req)
	if err != nil {
		guard.Close()
		return nil, guard.explain(err)
	}
	resp.Body = guard.wrap(resp.Body)
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s", resp.Status, msg)
	}
	return resp, nil
}

func (n *Node) fetchBody(ctx context.Context, addr string, h storage.Hash) error {
	resp, err := n.getBody(ctx, addr, h)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _, err = n.bodies.Put(ctx, io.LimitReader(resp.Body, maxBodyRPC), &h)
	if err != nil && (errors.Is(err, storage.ErrNoSpace) || n.bodies.Failed() != nil) {
		// The free-space check passed, but the reserve was reached
		// meanwhile, or the disk filled under the store.
		return localError{err}
	}
	return err
}

// localError is a failure of a read from a replica that is this node's
// own: its store refused the copy. eachReplica neither marks the replica
// failed for it nor asks the next one.
type localError struct{ error }

func (e localError) Unwrap() error { return e.error }
