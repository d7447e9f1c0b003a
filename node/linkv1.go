package node

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"time"
)

// The unsealed version-1 links (mux.go) that a node made or admitted
// before its cluster reached command encoding 5 would outlive the raise:
// raft's transport, the RPC client and the body streams keep connections
// open and reuse them for as long as they work, and an attacker on the
// path of one can still inject into it. v1Links keeps them so that the
// raise ends them; their users redial with version 2.

// v1LinkCheck is how often a node looks for the raise.
const v1LinkCheck = time.Second

// v1Links tracks a node's open unsealed version-1 connections.
type v1Links struct {
	mu    sync.Mutex
	conns map[*v1Conn]struct{}
	ended bool // the raise was seen: no version-1 connection is kept
}

// v1Conn is a tracked version-1 connection.
type v1Conn struct {
	net.Conn
	links *v1Links
}

func (c *v1Conn) Close() error {
	c.links.forget(c)
	return c.Conn.Close()
}

// unsealed reports whether conn is a plain connection that is not sealed,
// that is, one that passed the version-1 handshake without TLS.
func unsealed(conn net.Conn) bool {
	switch conn.(type) {
	case *sealedConn, *tls.Conn:
		return false
	}
	return true
}

// track returns conn, tracked if it is an unsealed one. If the raise
// was seen meanwhile it closes conn and returns ErrOldHandshake. A nil
// v1Links tracks nothing.
func (l *v1Links) track(conn net.Conn) (net.Conn, error) {
	if l == nil || !unsealed(conn) {
		return conn, nil
	}
	c := &v1Conn{Conn: conn, links: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		conn.Close()
		return nil, ErrOldHandshake
	}
	if l.conns == nil {
		l.conns = map[*v1Conn]struct{}{}
	}
	l.conns[c] = struct{}{}
	return c, nil
}

func (l *v1Links) forget(c *v1Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.conns, c)
}

// end closes every tracked connection and every one tracked later.
func (l *v1Links) end() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	n := len(l.conns)
	for c := range l.conns {
		c.Conn.Close()
	}
	clear(l.conns)
	return n
}

// endV1LinksAtRaise ends the version-1 links once the cluster is at
// encoding 5, checking every v1LinkCheck until it is.
func (n *Node) endV1LinksAtRaise(ctx context.Context) {
	t := time.NewTicker(v1LinkCheck)
	defer t.Stop()
	for {
		if !n.legacyLinks() {
			if k := n.v1.end(); k > 0 {
				n.log.Info("closed unsealed cluster connections at command encoding 5", "connections", k)
			}
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
