package node

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails its first Accept as accept(2) does when the
// process is out of descriptors.
type flakyListener struct {
	net.Listener
	failed atomic.Bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// startTestMux serves ln; member, if set, marks members' addresses.
func startTestMux(t *testing.T, ln net.Listener, member func(net.Addr) bool) (*mux, clusterDialer) {
	t.Helper()
	d := clusterDialer{secret: []byte("0123456789abcdef0123")}
	m := newMux(ln, d, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c net.Conn) { c.Close() })
	m.member = member
	go m.serve()
	t.Cleanup(func() { m.close() })
	return m, d
}

// reachesRPC dials the mux as a peer and waits for the connection on
// its RPC listener.
func reachesRPC(t *testing.T, m *mux, d clusterDialer, addr string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := d.dial(ctx, addr, kindRPC)
	if err != nil {
		return err
	}
	defer conn.Close()
	got := make(chan error, 1)
	go func() {
		c, err := m.rpc.Accept()
		if c != nil {
			c.Close()
		}
		got <- err
	}()
	select {
	case err := <-got:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A failed accept (EMFILE) is retried: before, it closed the raft and
// RPC listeners for good and the node fell out of its cluster.
func TestMuxSurvivesAFailedAccept(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, d := startTestMux(t, &flakyListener{Listener: ln}, nil)
	if err := reachesRPC(t, m, d, ln.Addr().String()); err != nil {
		t.Fatalf("a peer after one failed accept: %v", err)
	}
}

// Silent connections from one address take at most its share of the
// handshake slots; the next is closed at once, and once they are gone a
// peer gets through.
func TestMuxBoundsSilentConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, d := startTestMux(t, ln, nil)
	var silent []net.Conn
	for range maxHandshakesPerIP {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	time.Sleep(100 * time.Millisecond) // all accepted and waiting for a hello
	extra, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a connection past the per-address cap: read %v, want EOF at once", err)
	}
	for _, c := range silent {
		c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	if err := reachesRPC(t, m, d, ln.Addr().String()); err != nil {
		t.Fatalf("a peer after the silent connections went: %v", err)
	}
}

// A member's host is not held to the caps: nodes that share an address
// (one host, or NAT) may open many connections at once, and strangers
// that fill the caps must not keep a member out.
func TestMuxDoesNotCapMembers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, d := startTestMux(t, ln, func(net.Addr) bool { return true })
	for range maxHandshakesPerIP + 8 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(100 * time.Millisecond)
	if err := reachesRPC(t, m, d, ln.Addr().String()); err != nil {
		t.Fatalf("a member past the per-address cap: %v", err)
	}
}

// memberHost knows the members' hosts from the directory.
func TestMemberHost(t *testing.T) {
	c := newTestCluster(t, 1)
	n := c.leader(5 * time.Second)
	waitFor(t, 5*time.Second, "member record", func() bool { m, _ := n.State().Members(); return len(m) == 1 })
	if !n.memberHost(&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 1}) || n.memberHost(&net.TCPAddr{IP: net.ParseIP("10.9.9.9"), Port: 1}) {
		t.Error("memberHost: want 127.0.0.1 a member's host and 10.9.9.9 not")
	}
}

// A stranger's connection is closed one handshake timeout after it was
// accepted, whatever the steps it dribbles through: in mixed mode the
// first byte (TLS or not) and then the plain handshake each had a
// timeout of their own, so a silent stranger held a slot twice as long.
func TestMuxHandshakeHasOneDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, "cluster CA")
	d := clusterDialer{secret: testSecret, tls: ca.config(t, "n1"), mixed: true}
	m := newMux(ln, d, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c net.Conn) { c.Close() })
	m.handshakeTimeout = time.Second
	go m.serve()
	t.Cleanup(func() { m.close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	time.Sleep(800 * time.Millisecond)
	c.Write([]byte(muxMagic[:1])) // a plain hello begins, and stops
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read %v, want EOF", err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("closed %v after it was accepted, want about the handshake timeout (1s)", took)
	}
}

// lateListener hands out one last connection as it is closed: accept(2)
// returned it just before the close.
type lateListener struct {
	net.Listener
	ch   chan net.Conn
	last net.Conn
}

func (l *lateListener) Accept() (net.Conn, error) {
	if c, ok := <-l.ch; ok {
		return c, nil
	}
	return nil, net.ErrClosed
}

func (l *lateListener) Close() error {
	l.ch <- l.last
	close(l.ch)
	return l.Listener.Close()
}

// lateConn records a read after the mux's close returned.
type lateConn struct {
	net.Conn
	muxClosed, readLate, closed atomic.Bool
}

func (c *lateConn) Read(b []byte) (int, error) {
	if c.muxClosed.Load() {
		c.readLate.Store(true)
	}
	return c.Conn.Read(b)
}

func (c *lateConn) Close() error { c.closed.Store(true); return c.Conn.Close() }

// A connection accepted as the mux closes gets no handshake after close
// returned, only a close: serve added it to the wait group after close's
// Wait could have returned (a race), and its handshake ran on after the
// node's shutdown had closed what it hands connections to.
func TestMuxCloseLeavesNoHandshakeBehind(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := net.Pipe()
	theirs.Close() // a handshake fails at once
	last := &lateConn{Conn: ours}
	late := &lateListener{Listener: ln, ch: make(chan net.Conn, 1), last: last}
	m := newMux(late, clusterDialer{secret: testSecret}, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c net.Conn) { c.Close() })
	go m.serve()
	time.Sleep(10 * time.Millisecond) // serve waits in Accept
	m.close()
	last.muxClosed.Store(true)
	waitFor(t, 5*time.Second, "the late connection closed", last.closed.Load)
	if last.readLate.Load() {
		t.Error("a handshake read the connection after the mux's close returned")
	}
}
