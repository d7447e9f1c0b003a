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
var ErrBodyUnavailable = errors.New("no readable replica of the body")

// OpenBody returns a reader of a message body. A local copy is read if
// this node has an intact one. Otherwise the body is fetched from the
// replicas the directory lists, in turn, into the local store (which
// verifies the hash before it keeps anything); a replica that is down or
// returns corrupt data is skipped. A fetched copy is not listed as a
// replica, so it acts as a cache: the orphan sweep removes it after the
// grace period.
func (n *Node) OpenBody(ctx context.Context, hash string) (Body, error) {
	rd, err := n.openBody(ctx, hash)
	if err != nil {
		return nil, err
	}
	return rd, nil
}

func (n *Node) openBody(ctx context.Context, hash string) (*storage.Reader, error) {
	h, err := storage.ParseHash(hash)
	if err != nil {
		return nil, err
	}
	rd, err := n.bodies.Reader(ctx, h)
	if err == nil {
		return rd, nil
	}
	if !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrCorrupt) {
		return nil, err
	}
	b, err := n.state.Body(hash)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBodyUnavailable, err)
	}
	members, err := n.state.Members()
	if err != nil {
		return nil, err
	}
	addr := map[string]string{}
	for _, m := range members {
		addr[m.ID] = m.ClusterAddr
	}
	var errs []error
	for _, id := range b.Replicas {
		if id == n.cfg.ID || addr[id] == "" {
			continue
		}
		if err := n.fetchBody(ctx, addr[id], h); err != nil {
			errs = append(errs, fmt.Errorf("from %s: %w", id, err))
			n.health.fail(id)
			continue
		}
		return n.bodies.Reader(ctx, h)
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrBodyUnavailable, hash, errors.Join(errs...))
}

func (n *Node) fetchBody(ctx context.Context, addr string, h storage.Hash) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/rpc/body/"+h.String(), nil)
	if err != nil {
		return err
	}
	resp, err := n.rpc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s", resp.Status, msg)
	}
	_, _, err = n.bodies.Put(ctx, io.LimitReader(resp.Body, maxBodyRPC), &h)
	return err
}
