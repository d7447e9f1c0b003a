package node

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"powermail/storage"
)

// Reading a body this node holds no replica of. A small body (at most
// Config.RemoteReadMax bytes) is read from a replica into memory, its
// hash checked, and kept in a node-wide LRU (Config.RemoteCacheBytes):
// no disk write, no fsync, nothing for the orphan sweep to delete later.
// A larger body is copied into the local store as before, so that it is
// streamed and never held whole in memory.

// Defaults for reading bodies held elsewhere.
const (
	DefaultRemoteReadMax    = 1 << 20
	DefaultRemoteCacheBytes = 32 << 20
)

// memBody is a verified body held in memory.
type memBody struct {
	*bytes.Reader
	size int64
}

func (b *memBody) Close() error { return nil }
func (b *memBody) Size() int64  { return b.size }

func newMemBody(p []byte) *memBody { return &memBody{Reader: bytes.NewReader(p), size: int64(len(p))} }

// remoteCache is an LRU of verified bodies read from replicas, bounded in
// bytes. Its entries are never modified, so readers share them.
type remoteCache struct {
	mu   sync.Mutex
	max  int64
	used int64
	lru  *list.List // of *remoteEntry, most recent first
	m    map[storage.Hash]*list.Element
}

type remoteEntry struct {
	h    storage.Hash
	body []byte
}

func newRemoteCache(max int64) *remoteCache {
	return &remoteCache{max: max, lru: list.New(), m: map[storage.Hash]*list.Element{}}
}

func (c *remoteCache) get(h storage.Hash) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(e)
	return e.Value.(*remoteEntry).body, true
}

func (c *remoteCache) put(h storage.Hash, body []byte) {
	if int64(len(body)) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[h]; ok {
		return
	}
	c.m[h] = c.lru.PushFront(&remoteEntry{h: h, body: body})
	c.used += int64(len(body))
	for c.used > c.max {
		old := c.lru.Back()
		ent := old.Value.(*remoteEntry)
		c.lru.Remove(old)
		delete(c.m, ent.h)
		c.used -= int64(len(ent.body))
	}
}

// openRemote opens h, which this node does not hold (or holds corrupt),
// from its replicas: into memory if it is small, else into the local
// store.
func (n *Node) openRemote(ctx context.Context, h storage.Hash) (Body, error) {
	if p, ok := n.remote.get(h); ok {
		return newMemBody(p), nil
	}
	b, err := n.state.Body(h.String())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBodyUnavailable, err)
	}
	if b.Size > n.cfg.RemoteReadMax {
		if n.bodies.Failed() != nil || n.bodies.CheckSpace(b.Size) != nil {
			// The store cannot take a copy (remotestream.go).
			return n.openStreamed(ctx, h, b.Size, b.Replicas)
		}
		err := n.eachReplica(h, b.Replicas, func(_, addr string) error { return n.fetchBody(ctx, addr, h) })
		if errors.As(err, new(localError)) {
			// The store refused the copy after all: streamed, as
			// when it said so at first.
			return n.openStreamed(ctx, h, b.Size, b.Replicas)
		}
		if err != nil {
			return nil, err
		}
		rd, err := n.bodies.Reader(ctx, h)
		if err != nil {
			return nil, err
		}
		return newWatchedBody(ctx, n, rd), nil
	}
	var p []byte
	err = n.eachReplica(h, b.Replicas, func(_, addr string) (err error) {
		p, err = n.fetchBodyBytes(ctx, addr, h, b.Size)
		return err
	})
	if err != nil {
		return nil, err
	}
	n.remote.put(h, p)
	return newMemBody(p), nil
}

// fetchBodyBytes reads h, of the given size, from the replica at addr and
// checks its hash.
func (n *Node) fetchBodyBytes(ctx context.Context, addr string, h storage.Hash, size int64) ([]byte, error) {
	resp, err := n.getBody(ctx, addr, h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, size+1)); err != nil {
		return nil, err
	}
	if got := storage.HashBytes(buf.Bytes()); got != h {
		return nil, fmt.Errorf("%w: replica at %s sent %d bytes hashing to %s", storage.ErrCorrupt, addr, buf.Len(), got)
	}
	return buf.Bytes(), nil
}
