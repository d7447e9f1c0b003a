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
// only. A connection from a trusted host takes a slot of that host's
// pool instead (pool; nil: the strangers'): the node's own host (the
// operator's CLI there) and the members' hosts (a node rejoining, tools
// run there) each have a pool of the same size, so they get in however
// many addresses the strangers use, and the process holds at most three
// times slots.max. A proxy on the node's own host makes every client
// look like the host: they then share the own host's pool, and the
// members still have theirs. A node joining from a new host is a
// stranger until it is in, and retries.
type capListener struct {
	net.Listener
	slots *connSlots
	pool  func(net.Conn) *connSlots
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		pool := l.slots
		if l.pool != nil {
			if p := l.pool(c); p != nil {
				pool = p
			}
		}
		if release, ok := pool.take(c.RemoteAddr()); ok {
			return &slotConn{Conn: c, free: release}, nil
		}
		c.Close()
	}
}

// adminPools are the admin port's pools for trusted hosts.
type adminPools struct {
	own, members *connSlots
}

// newAdminPools sizes the trusted pools like the strangers' one: the own
// host's without a share per address (it is one), the members' with the
// same share per address as strangers get, so that no one member's host
// (nor a proxy on it) takes the others' room.
func newAdminPools(max, perIP int) adminPools {
	return adminPools{own: &connSlots{max: max, perIP: max}, members: &connSlots{max: max, perIP: perIP}}
}

// adminPool returns the pool c's host draws from: the own host's (its
// source is the address it reached, as a local client's is), the
// members' (as the cluster port trusts them, mux.member), or nil for a
// stranger.
func (n *Node) adminPool(pools adminPools) func(net.Conn) *connSlots {
	return func(c net.Conn) *connSlots {
		remote, ok := c.RemoteAddr().(*net.TCPAddr)
		if !ok {
			return nil
		}
		if local, ok := c.LocalAddr().(*net.TCPAddr); ok && local.IP.Equal(remote.IP) {
			return pools.own
		}
		if n.memberHost(remote) {
			return pools.members
		}
		return nil
	}
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
