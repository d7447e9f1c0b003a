package jepsen

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Net is the network between the nodes, as the harness controls it: one
// TCP proxy in front of each node's cluster port. Every node advertises
// its proxy's address (--advertise), so all raft and cluster-RPC traffic
// to a node passes its proxy. The proxy learns which node dialed each
// connection from /proc (see procnet.go), so a single link between two
// nodes can be cut, in both directions, while each keeps talking to the
// others: that is enough for every partition shape (isolate a node,
// majority/minority with the minority still connected, bridge) without
// network namespaces or root.
//
// A cut link is a black hole, not a refusal: bytes already in flight stop
// moving, new connections are accepted but never reach the node, and
// nothing is closed, so peers see timeouts as with a real partition. When
// the link heals, held bytes are delivered (late, as TCP retransmission
// would) and held connections are put through. A slow node gets a delay
// on every chunk of every connection to or from it.
type Net struct {
	owner func(net.Conn) string // the node that dialed an accepted connection; "" unknown
	logf  func(string, ...any)

	mu      sync.Mutex
	cut     map[link]bool
	slow    map[string]time.Duration
	changed chan struct{} // closed and replaced on every change
	proxies []*proxy
	pipes   map[*pipe]struct{}
	closed  bool

	unknown atomic.Int64 // connections whose dialer could not be identified
	total   atomic.Int64
}

// link is an unordered pair of node IDs (a < b).
type link struct{ a, b string }

func mkLink(x, y string) link {
	if x > y {
		x, y = y, x
	}
	return link{x, y}
}

// NewNet returns a network with every link up. owner names the node that
// dialed an accepted connection ("" when unknown); logf may be nil.
func NewNet(owner func(net.Conn) string, logf func(string, ...any)) *Net {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Net{owner: owner, logf: logf, cut: map[link]bool{}, slow: map[string]time.Duration{},
		changed: make(chan struct{}), pipes: map[*pipe]struct{}{}}
}

// Listen starts the proxy for node on listen (host:port), forwarding to
// target, the node's real cluster address. It returns the bound address.
func (n *Net) Listen(node, listen, target string) (string, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return "", fmt.Errorf("proxy for %s: %w", node, err)
	}
	p := &proxy{net: n, node: node, ln: ln, target: target}
	n.mu.Lock()
	n.proxies = append(n.proxies, p)
	n.mu.Unlock()
	go p.serve()
	return ln.Addr().String(), nil
}

// Partition cuts exactly the given links (pairs of node IDs), healing any
// other cut link.
func (n *Net) Partition(pairs [][2]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[link]bool{}
	for _, p := range pairs {
		if p[0] != p[1] {
			n.cut[mkLink(p[0], p[1])] = true
		}
	}
	n.broadcast()
}

// Slow delays every chunk to or from node by d (0: no delay).
func (n *Net) Slow(node string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d <= 0 {
		delete(n.slow, node)
	} else {
		n.slow[node] = d
	}
	n.broadcast()
}

// Heal restores every link and removes every delay.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[link]bool{}
	n.slow = map[string]time.Duration{}
	n.broadcast()
}

// Cuts describes the cut links ("n1-n2 n1-n3"), or "".
func (n *Net) Cuts() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for l := range n.cut {
		out = append(out, l.a+"-"+l.b)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// Connections returns how many connections the proxies accepted and how
// many of them came from a process that was not identified.
func (n *Net) Connections() (total, unknown int64) { return n.total.Load(), n.unknown.Load() }

// Close stops every proxy and drops every connection.
func (n *Net) Close() {
	n.mu.Lock()
	n.closed = true
	proxies := slices.Clone(n.proxies)
	var pipes []*pipe
	for p := range n.pipes {
		pipes = append(pipes, p)
	}
	n.broadcast()
	n.mu.Unlock()
	for _, p := range proxies {
		p.ln.Close()
	}
	for _, p := range pipes {
		p.close()
	}
}

func (n *Net) broadcast() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// isCut reports whether traffic between from and to is cut. A connection
// from an unknown process is cut when any link of its destination is.
func (n *Net) isCut(from, to string) bool {
	if from == to {
		return false
	}
	if from != "" {
		return n.cut[mkLink(from, to)]
	}
	for l := range n.cut {
		if l.a == to || l.b == to {
			return true
		}
	}
	return false
}

var errPipeClosed = errors.New("proxy connection closed")

// wait blocks while p's link is cut, then, if delay is set, sleeps the
// link's delay.
func (n *Net) wait(p *pipe, delay bool) error {
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return errPipeClosed
		}
		open := !n.isCut(p.from, p.to)
		d := n.slow[p.from] + n.slow[p.to]
		ch := n.changed
		n.mu.Unlock()
		if open {
			if delay && d > 0 {
				select {
				case <-time.After(d):
				case <-p.done:
					return errPipeClosed
				}
			}
			return nil
		}
		select {
		case <-ch:
		case <-p.done:
			return errPipeClosed
		}
	}
}

// proxy accepts connections for one node.
type proxy struct {
	net    *Net
	node   string
	ln     net.Listener
	target string
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

// pipe is one proxied connection.
type pipe struct {
	from, to string
	client   net.Conn
	server   net.Conn // nil until dialed
	mu       sync.Mutex
	done     chan struct{}
	once     sync.Once
}

func (p *pipe) close() {
	p.once.Do(func() {
		close(p.done)
		p.client.Close()
		p.mu.Lock()
		if p.server != nil {
			p.server.Close()
		}
		p.mu.Unlock()
	})
}

func (p *proxy) handle(c net.Conn) {
	n := p.net
	n.total.Add(1)
	from := ""
	if n.owner != nil {
		from = n.owner(c)
	}
	if from == "" {
		n.unknown.Add(1)
	}
	pp := &pipe{from: from, to: p.node, client: c, done: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		c.Close()
		return
	}
	n.pipes[pp] = struct{}{}
	n.mu.Unlock()
	defer func() {
		pp.close()
		n.mu.Lock()
		delete(n.pipes, pp)
		n.mu.Unlock()
	}()
	// A connection over a cut link is held before it reaches the node.
	if n.wait(pp, false) != nil {
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		return // the node is down: the dialer sees its connection closed
	}
	pp.mu.Lock()
	pp.server = s
	pp.mu.Unlock()
	select {
	case <-pp.done:
		s.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); n.copy(pp, s, c) }()
	go func() { defer wg.Done(); n.copy(pp, c, s) }()
	wg.Wait()
}

// copy moves bytes from src to dst while the link is up; either side
// ending ends the whole connection.
func (n *Net) copy(p *pipe, dst, src net.Conn) {
	defer p.close()
	buf := make([]byte, 32<<10)
	for {
		if n.wait(p, false) != nil {
			return
		}
		k, err := src.Read(buf)
		if k > 0 {
			if n.wait(p, true) != nil {
				return
			}
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset or closed: the connection is over
		}
	}
}
