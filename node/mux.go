package node

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The cluster port carries raft and the cluster RPC on one TCP listener.
// Every connection starts with a mutual challenge-response on the cluster
// secret, so a peer that lacks it can neither join, nor read, nor inject
// raft messages:
//
//	dialer   -> "PMC2" kind cnonce[32]
//	listener -> snonce[32] HMAC(secret, "2" "S" kind cnonce snonce)
//	dialer   -> HMAC(secret, "2" "C" kind cnonce snonce)
//
// The connection then carries the stream of its kind, in sealed frames
// (linkseal.go) unless it runs in TLS. The handshake does not say which
// member the peer is; the answers on the stream do, and callers check
// them (raftpeer.go, peerid.go). With cluster TLS (clustertls.go)
// the same exchange runs inside a TLS session whose peers both hold
// certificates of the cluster CA.
//
// Version 1 ("PMC1", proofs without the "2") is the handshake of releases
// before command encoding 5; its stream is not sealed, so an attacker on
// the path who relays it can inject RPCs after it. A node speaks it only
// while its cluster is below encoding 5 (clusterDialer.legacy): it
// answers a version-1 dialer, and falls back to version 1 with a peer
// that hangs up on the version-2 hello (an older release does) unless
// that peer spoke version 2 with it before. The raise to 5, once every
// node runs this release, ends version 1 for good.

const (
	kindRaft byte = 'R'
	kindRPC  byte = 'H'

	muxMagicV1 = "PMC1"
	muxMagic   = "PMC2"
	nonceLen   = 32
	macLen     = sha256.Size
	handshake  = 5 * time.Second

	tlsRecordHandshake = 0x16 // the first byte a TLS client sends
)

// ErrUnauthenticated is returned when a peer fails the cluster handshake.
var ErrUnauthenticated = errors.New("cluster peer failed authentication")

// mac is a handshake proof. bind is the TLS session's channel binding
// (nil without TLS), so that a proof made for one session is worthless
// in another.
func mac(secret []byte, version, side, kind byte, cn, sn, bind []byte) []byte {
	m := hmac.New(sha256.New, secret)
	if version >= linkV2 {
		m.Write([]byte{'0' + version})
	}
	m.Write([]byte{side, kind})
	m.Write(cn)
	m.Write(sn)
	m.Write(bind)
	return m.Sum(nil)
}

// channelBinding is keying material exported from conn's TLS session
// (RFC 8446 §7.5; nil without TLS). Mixed into the handshake's proofs, it
// ties them to the session: a relay holding a cluster certificate but not
// the secret cannot pass one node's proofs on to another over a session
// of its own.
func channelBinding(conn net.Conn) ([]byte, error) {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil, nil
	}
	cs := tc.ConnectionState()
	return cs.ExportKeyingMaterial("EXPORTER-powermail-cluster", nil, 32)
}

// closeNow closes conn without a TLS close_notify, which would wait up
// to 5 s for a peer that stopped reading.
func closeNow(conn net.Conn) error {
	if tc, ok := conn.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return conn.Close()
}

// Handshake versions (see the top of this file).
const (
	linkV1 byte = 1
	linkV2 byte = 2
)

// clusterDialer opens connections to peers' cluster ports: over TLS when
// the cluster has it (clustertls.go), then through the handshake on the
// secret.
type clusterDialer struct {
	secret []byte
	tls    *tls.Config // nil: plain TCP
	mixed  bool        // with tls: fall back to plain with a plain peer, and admit plain
	// spokeTLS holds the addresses that completed TLS with this node
	// (nil: none remembered); mixed mode never falls back to plain with
	// them, so a forced downgrade works only before a peer switched.
	spokeTLS *sync.Map
	// spokeV2 likewise holds the addresses that completed the version-2
	// handshake: no fallback to version 1 with them.
	spokeV2 *sync.Map
	// legacy reports whether version 1 is still allowed (the cluster is
	// below command encoding 5); nil allows it.
	legacy func() bool
	// v1 tracks the unsealed version-1 connections, so that the raise
	// to 5 ends them (linkv1.go); nil tracks none.
	v1 *v1Links
}

// legacyAllowed reports whether the dialer may speak version 1.
func (d clusterDialer) legacyAllowed() bool { return d.legacy == nil || d.legacy() }

// dial opens an authenticated connection of the given kind: version 2,
// or version 1 with an older peer while that is allowed.
func (d clusterDialer) dial(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	conn, err := d.dialVersion(ctx, addr, kind, linkV2)
	if err == nil {
		if d.spokeV2 != nil {
			d.spokeV2.Store(addr, true)
		}
		return conn, nil
	}
	if !errors.Is(err, errOldPeer) || !d.legacyAllowed() {
		return nil, err
	}
	if d.spokeV2 != nil {
		if _, ok := d.spokeV2.Load(addr); ok {
			return nil, fmt.Errorf("%w (it spoke the version-2 handshake before, so no version-1 retry)", err)
		}
	}
	conn, lerr := d.dialVersion(ctx, addr, kind, linkV1)
	if lerr != nil {
		return nil, fmt.Errorf("%w; then with the version-1 handshake: %w", err, lerr)
	}
	return d.v1.track(conn)
}

// dialVersion opens a connection with handshake version v, in TLS or
// plain as the cluster's TLS mode says.
func (d clusterDialer) dialVersion(ctx context.Context, addr string, kind, v byte) (net.Conn, error) {
	conn, err := d.dialAs(ctx, addr, kind, v, d.tls)
	switch {
	case err == nil && d.tls != nil && d.spokeTLS != nil:
		d.spokeTLS.Store(addr, true)
	case err != nil && d.mixed && errors.Is(err, errPlainPeer):
		if d.spokeTLS != nil {
			if _, ok := d.spokeTLS.Load(addr); ok {
				return nil, fmt.Errorf("%w (it spoke TLS before, so no plain retry)", err)
			}
		}
		conn, perr := d.dialAs(ctx, addr, kind, v, nil)
		if perr != nil {
			return nil, fmt.Errorf("%w; then in plain: %w", err, perr)
		}
		return conn, nil
	}
	return conn, err
}

// errPlainPeer: the peer closed the connection (EOF or reset) during the
// TLS handshake, as a node without cluster TLS does on the hello. A TLS
// peer that refuses our certificate does so after our side of the
// handshake is done (TLS 1.3), in the cluster handshake that follows,
// which is never retried in plain.
var errPlainPeer = errors.New("the peer does not speak TLS")

// errOldPeer: the peer hung up on the version-2 hello, as a release
// before it does.
var errOldPeer = errors.New("the peer does not speak the version-2 cluster handshake")

func (d clusterDialer) dialAs(ctx context.Context, addr string, kind, v byte, tlsCfg *tls.Config) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if tlsCfg != nil {
		tc := tls.Client(conn, tlsCfg)
		hctx, cancel := context.WithTimeout(ctx, handshake)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			conn.Close()
			if hungUp(err) {
				err = fmt.Errorf("%w: %w", errPlainPeer, err)
			}
			return nil, fmt.Errorf("%w: TLS with %s (does it have cluster TLS?): %w", ErrUnauthenticated, addr, err)
		}
		conn = tc
	}
	sealed, err := clientHandshake(conn, d.secret, kind, v)
	if err != nil {
		closeNow(conn)
		if tlsCfg == nil && v == linkV1 && errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w (does the peer require cluster TLS?)", err)
		}
		return nil, fmt.Errorf("handshake with %s: %w", addr, err)
	}
	return sealed, nil
}

// hungUp reports an error of a peer that closed the connection.
func hungUp(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// clientHandshake proves the secret to the listener and checks its proof,
// and returns the connection to use: conn itself, or conn sealed
// (version 2 without TLS).
func clientHandshake(conn net.Conn, secret []byte, kind, v byte) (net.Conn, error) {
	conn.SetDeadline(time.Now().Add(handshake))
	defer conn.SetDeadline(time.Time{})
	bind, err := channelBinding(conn)
	if err != nil {
		return nil, err
	}
	cn := make([]byte, nonceLen)
	rand.Read(cn)
	magic := muxMagic
	if v == linkV1 {
		magic = muxMagicV1
	}
	hello := append(append([]byte(magic), kind), cn...)
	if _, err := conn.Write(hello); err != nil {
		return nil, err
	}
	reply := make([]byte, nonceLen+macLen)
	if _, err := io.ReadFull(conn, reply); err != nil {
		if v >= linkV2 && hungUp(err) {
			err = fmt.Errorf("%w: %w", errOldPeer, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	sn := reply[:nonceLen]
	if !hmac.Equal(reply[nonceLen:], mac(secret, v, 'S', kind, cn, sn, bind)) {
		return nil, ErrUnauthenticated
	}
	if _, err := conn.Write(mac(secret, v, 'C', kind, cn, sn, bind)); err != nil {
		return nil, err
	}
	return seal(conn, secret, kind, v, cn, sn, bind, true), nil
}

// seal wraps a version-2 plain connection in sealed frames.
func seal(conn net.Conn, secret []byte, kind, v byte, cn, sn, bind []byte, dialer bool) net.Conn {
	if _, isTLS := conn.(*tls.Conn); isTLS || v < linkV2 {
		return conn
	}
	toListener, toDialer := sealKeys(secret, kind, cn, sn, bind)
	if dialer {
		return newSealedConn(conn, toListener, toDialer)
	}
	return newSealedConn(conn, toDialer, toListener)
}

// serverHandshake checks the dialer's proof and proves the secret in
// turn, by deadline. It returns the stream kind and the connection to use (conn, or
// conn sealed). legacy reports whether version 1 is still allowed.
func serverHandshake(conn net.Conn, secret []byte, legacy func() bool, deadline time.Time) (byte, net.Conn, error) {
	conn.SetDeadline(deadline)
	defer conn.SetDeadline(time.Time{})
	bind, err := channelBinding(conn)
	if err != nil {
		return 0, nil, err
	}
	hello := make([]byte, len(muxMagic)+1+nonceLen)
	if _, err := io.ReadFull(conn, hello); err != nil {
		return 0, nil, err
	}
	v, err := helloVersion(string(hello[:len(muxMagic)]), legacy)
	if err != nil {
		if hello[0] == tlsRecordHandshake {
			return 0, nil, fmt.Errorf("%w: the peer speaks TLS, and this node has no cluster certificate", ErrUnauthenticated)
		}
		return 0, nil, err
	}
	kind, cn := hello[len(muxMagic)], hello[len(muxMagic)+1:]
	if kind != kindRaft && kind != kindRPC && kind != kindBody {
		return 0, nil, fmt.Errorf("%w: unknown stream kind %q", ErrUnauthenticated, kind)
	}
	sn := make([]byte, nonceLen)
	rand.Read(sn)
	if _, err := conn.Write(append(sn, mac(secret, v, 'S', kind, cn, sn, bind)...)); err != nil {
		return 0, nil, err
	}
	proof := make([]byte, macLen)
	if _, err := io.ReadFull(conn, proof); err != nil {
		return 0, nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	if !hmac.Equal(proof, mac(secret, v, 'C', kind, cn, sn, bind)) {
		return 0, nil, ErrUnauthenticated
	}
	return kind, seal(conn, secret, kind, v, cn, sn, bind, false), nil
}

// ErrOldHandshake: a peer used the version-1 handshake in a cluster at
// command encoding 5 or more, which has every node refuse it.
var ErrOldHandshake = errors.New("the version-1 cluster handshake is refused at command encoding 5 (is the peer an older release?)")

// helloVersion reads the handshake version off a hello's magic.
func helloVersion(magic string, legacy func() bool) (byte, error) {
	switch {
	case magic == muxMagic:
		return linkV2, nil
	case magic != muxMagicV1:
		return 0, fmt.Errorf("%w: bad magic", ErrUnauthenticated)
	case legacy != nil && !legacy():
		return 0, fmt.Errorf("%w: %w", ErrUnauthenticated, ErrOldHandshake)
	}
	return linkV1, nil
}

// mux accepts cluster connections, authenticates them, and hands each to
// the listener of its kind.
type mux struct {
	ln     net.Listener
	secret []byte
	tls    *tls.Config // nil: plain TCP
	mixed  bool        // with tls: admit plain connections too
	legacy func() bool // whether version 1 is still allowed (nil: it is)
	v1     *v1Links    // the unsealed version-1 connections (nil: untracked)
	log    *slog.Logger
	// refusals logs the connections that fail the handshake, without
	// flooding the log (refusallog.go).
	refusals refusalLog
	// handshakeTimeout is the time a connection has, from its accept, to
	// prove itself: the first byte (mixed mode), TLS and the handshake on
	// the secret together, so that a stranger dribbling through them holds
	// its slot no longer than one (0: handshake).
	handshakeTimeout time.Duration
	raft             *chanListener
	rpc              *chanListener
	body             func(net.Conn) // takes over a body stream (bodystream.go)
	wg               sync.WaitGroup
	// closing: close was called; serve stops at its next failed accept
	// whatever the error says. Set under addMu, under which serve adds
	// a connection to wg only while it is not: an Add after close's Wait
	// began would be a race, and its handshake would outlive the close.
	closing atomic.Bool
	addMu   sync.Mutex
	// member, if set, reports an address a member's cluster address
	// names: its connections are not counted against the handshake caps,
	// so neither a burst of its own (nodes that share an address, as on
	// one host) nor strangers filling the caps shut a member out.
	member func(net.Addr) bool
}

// newMux serves ln with the secret and TLS settings of d, the node's own
// dialer.
func newMux(ln net.Listener, d clusterDialer, log *slog.Logger, body func(net.Conn)) *mux {
	m := &mux{ln: ln, secret: d.secret, tls: d.tls, mixed: d.mixed, legacy: d.legacy, v1: d.v1, log: log, body: body}
	m.refusals.log = log
	m.raft = newChanListener(ln.Addr())
	m.rpc = newChanListener(ln.Addr())
	return m
}

// Connections still proving themselves are bounded, in all and per
// source address: a stranger's silent connections hold a descriptor and
// a goroutine for the handshake deadline each, and must neither exhaust
// the process's descriptors nor crowd out the peers' own handshakes.
// Connections from a member's host are not counted (mux.member).
const (
	maxHandshakes      = 256
	maxHandshakesPerIP = 32
)

// connSlots counts connections, in all and per source address, up to
// max and perIP (the handshakes here; the admin API's open connections).
type connSlots struct {
	max, perIP int

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

// take reserves a slot for a connection from addr, or reports none free.
func (h *connSlots) take(addr net.Addr) (release func(), ok bool) {
	ip := addr.String()
	if ta, isTCP := addr.(*net.TCPAddr); isTCP {
		ip = ClientKey(ta.IP) // an IPv6 host's /64
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.total >= h.max || h.byIP[ip] >= h.perIP {
		return nil, false
	}
	if h.byIP == nil {
		h.byIP = map[string]int{}
	}
	h.total++
	h.byIP[ip]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.total--
		if h.byIP[ip]--; h.byIP[ip] == 0 {
			delete(h.byIP, ip)
		}
	}, true
}

// serve accepts until the listener is closed. A failed accept (out of
// descriptors, say) is retried after a pause, as net/http does: giving
// up would cut the node off from raft and the RPC for good while it
// still looked healthy.
func (m *mux) serve() {
	slots := connSlots{max: maxHandshakes, perIP: maxHandshakesPerIP}
	var pause time.Duration
	for {
		conn, err := m.ln.Accept()
		if errors.Is(err, net.ErrClosed) || (err != nil && m.closing.Load()) {
			m.raft.close()
			m.rpc.close()
			return
		}
		if err != nil {
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			m.log.Warn("cluster accept failed; retrying", "err", err, "pause", pause)
			time.Sleep(pause)
			continue
		}
		pause = 0
		release, ok := func() {}, true
		if m.member == nil || !m.member(conn.RemoteAddr()) {
			release, ok = slots.take(conn.RemoteAddr())
		}
		if !ok {
			conn.Close() // a peer dials again; a flood gets nothing
			continue
		}
		if !m.track() { // accepted as close began
			release()
			conn.Close()
			continue
		}
		go func() {
			defer m.wg.Done()
			m.route(conn, release)
		}()
	}
}

// track adds a connection to wg, unless close has begun.
func (m *mux) track() bool {
	m.addMu.Lock()
	defer m.addMu.Unlock()
	if m.closing.Load() {
		return false
	}
	m.wg.Add(1)
	return true
}

// route authenticates conn and hands it on; proven (or refused), it
// calls done once.
func (m *mux) route(conn net.Conn, done func()) {
	var once sync.Once
	proven := func() { once.Do(done) }
	defer proven()
	deadline := time.Now().Add(m.timeout())
	useTLS := m.tls != nil
	if useTLS && m.mixed {
		var err error
		if conn, useTLS, err = sniffTLS(conn, deadline); err != nil {
			conn.Close()
			return
		}
	}
	if useTLS {
		tc := tls.Server(conn, m.tls)
		tc.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			m.refusals.refused(conn.RemoteAddr().String(), fmt.Errorf("TLS: %w", err))
			conn.Close()
			return
		}
		conn = tc
	}
	kind, stream, err := serverHandshake(conn, m.secret, m.legacy, deadline)
	proven()
	if err != nil {
		m.refusals.refused(conn.RemoteAddr().String(), err)
		closeNow(conn)
		return
	}
	if conn, err = m.v1.track(stream); err != nil {
		m.refusals.refused(stream.RemoteAddr().String(), err)
		return
	}
	if kind == kindBody {
		m.body(conn)
		return
	}
	target := m.rpc
	if kind == kindRaft {
		target = m.raft
	}
	if !target.deliver(conn) {
		conn.Close()
	}
}

// sniffTLS reads the first byte of conn to tell a TLS hello from the
// plain handshake, and returns a conn that still yields it.
func sniffTLS(conn net.Conn, deadline time.Time) (net.Conn, bool, error) {
	conn.SetReadDeadline(deadline)
	first := make([]byte, 1)
	if _, err := io.ReadFull(conn, first); err != nil {
		return conn, false, err
	}
	conn.SetReadDeadline(time.Time{})
	return &prefixConn{Conn: conn, prefix: first}, first[0] == tlsRecordHandshake, nil
}

// prefixConn is a conn whose first reads return prefix.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// timeout is the time a connection has to prove itself.
func (m *mux) timeout() time.Duration {
	if m.handshakeTimeout > 0 {
		return m.handshakeTimeout
	}
	return handshake
}

func (m *mux) close() error {
	m.addMu.Lock()
	m.closing.Store(true)
	m.addMu.Unlock()
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener(addr net.Addr) *chanListener {
	return &chanListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) close()         { l.once.Do(func() { close(l.done) }) }
func (l *chanListener) Close() error   { l.close(); return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }
