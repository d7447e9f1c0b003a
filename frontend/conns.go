package frontend

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// connTracker owns every accepted connection: it enforces the per-IP
// limit, gives each connection an idle read timeout, and can close or
// drain them all (Close, Shutdown). One tracker serves all listeners of a
// server, so the per-IP limit is per server.
type connTracker struct {
	maxPerIP    int
	readTimeout time.Duration
	hostname    string
	log         *slog.Logger

	mu    sync.Mutex
	perIP map[string]int
	live  map[*trackedConn]struct{}
}

func newConnTracker(cfg SMTPConfig) *connTracker {
	return &connTracker{
		maxPerIP:    cfg.MaxConnsPerIP,
		readTimeout: cfg.ReadTimeout,
		hostname:    cfg.Hostname,
		log:         cfg.Logger,
		perIP:       make(map[string]int),
		live:        make(map[*trackedConn]struct{}),
	}
}

// ipKey is the per-IP limit's key, or "" for connections without an IP
// address (unix sockets), which are not limited.
func ipKey(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return ""
}

// admit registers c, or reports false when its IP is at the limit.
func (t *connTracker) admit(c net.Conn) (*trackedConn, bool) {
	key := ipKey(c.RemoteAddr())
	t.mu.Lock()
	defer t.mu.Unlock()
	if key != "" && t.perIP[key] >= t.maxPerIP {
		return nil, false
	}
	if key != "" {
		t.perIP[key]++
	}
	tc := &trackedConn{Conn: c, tracker: t, key: key}
	t.live[tc] = struct{}{}
	return tc, true
}

func (t *connTracker) release(tc *trackedConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, tc)
	if tc.key == "" {
		return
	}
	if t.perIP[tc.key]--; t.perIP[tc.key] <= 0 {
		delete(t.perIP, tc.key)
	}
}

// refuse answers a connection over the per-IP limit and closes it. RFC
// 5321 §3.8 allows 421 at any time; it is the greeting here, so the
// client neither hangs nor treats it as permanent. A fresh socket's send
// buffer is empty, so the write does not block the accept loop.
func (t *connTracker) refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := fmt.Fprintf(c, "421 4.7.0 %s too many connections from your address, try again later\r\n", t.hostname)
	if err != nil {
		t.log.Debug("smtp: writing per-IP refusal", "remote", c.RemoteAddr(), "err", err)
	}
	_ = c.Close()
	// Debug, not Info: a flood of refused connections must not flood the log.
	t.log.Debug("smtp: connection refused, per-IP limit", "remote", c.RemoteAddr(), "limit", t.maxPerIP)
}

// snapshot returns the live connections.
func (t *connTracker) snapshot() []*trackedConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*trackedConn, 0, len(t.live))
	for tc := range t.live {
		out = append(out, tc)
	}
	return out
}

// expireIdle ends every connection that is not inside a mail
// transaction: its pending read fails, and go-smtp replies 421 and
// closes. Connections inside a transaction are expired when it ends.
func (t *connTracker) expireIdle() {
	for _, tc := range t.snapshot() {
		if !tc.busy.Load() {
			tc.expire()
		}
	}
}

func (t *connTracker) closeAll() {
	for _, tc := range t.snapshot() {
		_ = tc.Close()
	}
}

// trackedConn is an accepted connection with an idle read timeout. The
// timeout restarts before every Read, so it measures silence, not the
// length of a transfer (RFC 5321 §4.5.3.2.5/§4.5.3.2.7 time each data
// block and command, not the whole message). A timeout is sticky: once a
// read has timed out, every later read fails at once, so go-smtp cannot
// go on to parse the rest of an abandoned message as commands.
type trackedConn struct {
	net.Conn
	tracker *connTracker
	key     string

	expired   atomic.Bool // sticky read timeout, or drained by Shutdown
	busy      atomic.Bool // inside a mail transaction (MAIL..end of data)
	closeOnce sync.Once
}

func (c *trackedConn) Read(p []byte) (int, error) {
	if c.expired.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.tracker.readTimeout)); err != nil {
		return 0, err
	}
	// expire may have run between the check and the new deadline, and the
	// new deadline would then override its past one: look again.
	if c.expired.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := c.Conn.Read(p)
	if err != nil && os.IsTimeout(err) {
		c.expired.Store(true)
	}
	return n, err
}

// expire makes the pending and all later reads fail with a timeout.
func (c *trackedConn) expire() {
	if c == nil {
		return
	}
	c.expired.Store(true)
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
}

func (c *trackedConn) setBusy(b bool) {
	if c != nil {
		c.busy.Store(b)
	}
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.tracker.release(c) })
	return err
}

// trackedOf finds the trackedConn under c, looking through TLS after
// STARTTLS. It returns nil if there is none.
func trackedOf(c net.Conn) *trackedConn {
	for range 4 {
		switch v := c.(type) {
		case *trackedConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// limitListener applies the tracker to every accepted connection.
type limitListener struct {
	net.Listener
	tracker *connTracker
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc, ok := l.tracker.admit(c); ok {
			return tc, nil
		}
		l.tracker.refuse(c)
	}
}
