package node

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// capListener admits at most slots.max open connections, and slots.perIP
// from one address; one more is closed as soon as it is accepted, so that
// strangers holding connections open can take neither every file
// descriptor of the process nor every slot: one address gets its share
// only. A connection exempt (the operator's CLI on a node, the members'
// hosts: a node rejoining, tools run there) takes a slot of trusted
// instead, a pool of the same size without a share per address, so it
// gets in however many addresses the strangers have, and the process
// still holds at most twice slots.max (a proxy on the node's own host
// makes every client look like the host: they then share trusted). A
// node joining from a new host is a stranger until it is in, and
// retries.
type capListener struct {
	net.Listener
	slots   *connSlots
	trusted *connSlots
	exempt  func(net.Conn) bool
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		pool := l.slots
		if l.exempt != nil && l.exempt(c) {
			pool = l.trusted
		}
		if release, ok := pool.take(c.RemoteAddr()); ok {
			return &slotConn{Conn: c, free: release}, nil
		}
		c.Close()
	}
}

// trustedAdminPeer reports whether c comes from this node's own host (its
// source is the address it reached, as a local client's is) or from a
// member's host, as the cluster port trusts them (mux.member).
func (n *Node) trustedAdminPeer(c net.Conn) bool {
	remote, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return false
	}
	if local, ok := c.LocalAddr().(*net.TCPAddr); ok && local.IP.Equal(remote.IP) {
		return true
	}
	return n.memberHost(remote)
}

// slotConn gives its slot back once, on Close.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	c.once.Do(c.free)
	return c.Conn.Close()
}

// bodyDeadline gives the reading of a request's body d, and lifts that
// bound once the body has been read: the server's ReadTimeout would do
// the first, but its deadline stays on the connection while the handler
// runs, and net/http cancels a request whose connection's read deadline
// passes, so a long repair or verify would be cut.
func bodyDeadline(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 { // -1 is a chunked body
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &liftAtEOF{ReadCloser: r.Body, lift: func() { rc.SetReadDeadline(time.Time{}) }}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// liftAtEOF calls lift once, when the body ends.
type liftAtEOF struct {
	io.ReadCloser
	lift func()
	once sync.Once
}

func (b *liftAtEOF) Read(p []byte) (int, error) {
	k, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.lift)
	}
	return k, err
}
