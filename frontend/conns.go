package frontend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"powermail/node"
)

// connTracker owns every accepted connection: it enforces the per-IP
// limit, gives each connection an idle read timeout and a maximum
// lifetime, and can close or drain them all (Close, Shutdown). One
// tracker serves all listeners of a server, so the per-IP limit is per
// server.
type connTracker struct {
	maxPerIP    int
	maxTotal    int
	readTimeout time.Duration
	// maxSession bounds a connection's life, 0 for none (POP3); a
	// transaction under way at that point gets sessionGrace more.
	maxSession   time.Duration
	sessionGrace time.Duration
	hostname     string
	log          *slog.Logger

	// drainReply, when set (SMTP and LMTP), is the last reply of an idle
	// connection that a drain ended (drained), in place of go-smtp's
	// "Idle timeout" for the expired read.
	drainReply string
	drained    atomic.Bool

	// smtpReplies is set for an SMTP or LMTP server: its connections'
	// writes are go-smtp's replies, watched for a STARTTLS's 220 and
	// the 500 to an endless line. A POP3 server's writes carry message
	// text, which may start with either.
	smtpReplies bool

	// closing is set once the server closes: no connection lingers
	// (linger.go) from then on, and those lingering are cut short.
	closing atomic.Bool

	mu      sync.Mutex
	perIP   map[string]int
	waiting map[string]int // over-limit connections waiting for a slot
	live    map[*trackedConn]struct{}

	counts connCounts // for metrics
}

func newConnTracker(cfg SMTPConfig) *connTracker {
	return &connTracker{
		maxPerIP:     cfg.MaxConnsPerIP,
		maxTotal:     cfg.MaxConns,
		readTimeout:  cfg.ReadTimeout,
		maxSession:   cfg.MaxSessionTime,
		sessionGrace: cfg.DeliverTimeout,
		hostname:     cfg.Hostname,
		log:          cfg.Logger,
		perIP:        make(map[string]int),
		waiting:      make(map[string]int),
		live:         make(map[*trackedConn]struct{}),
	}
}

// ipKey is the per-IP limit's key (an IPv6 client's /84, node.ClientKey),
// or "" for connections without an IP address (unix sockets), which are
// not limited.
func ipKey(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return node.ClientKey(tcp.IP)
	}
	return ""
}

// peerIP is the remote address's IP as text, for logins (the
// Authenticator keys and logs it), or the address itself without one.
func peerIP(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return fmt.Sprint(a)
}

// refusal says why admit turned a connection away.
type refusal int

const (
	admitted  refusal = iota
	overPerIP         // its IP is at MaxConnsPerIP: it may wait for a slot
	overTotal         // the server is at MaxConns: refused at once
)

// admit registers c, or says which limit it is over.
func (t *connTracker) admit(c net.Conn) (*trackedConn, refusal) {
	key := ipKey(c.RemoteAddr())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.maxTotal > 0 && len(t.live) >= t.maxTotal {
		return nil, overTotal
	}
	if key != "" && t.perIP[key] >= t.maxPerIP {
		return nil, overPerIP
	}
	if key != "" {
		t.perIP[key]++
	}
	tc := &trackedConn{Conn: c, tracker: t, key: key, start: time.Now()}
	t.live[tc] = struct{}{}
	t.counts.admitted.Add(1)
	return tc, admitted
}

// collectors report the tracker's connection counts.
func (t *connTracker) collectors() []prometheus.Collector {
	return t.counts.collectors(func() int {
		t.mu.Lock()
		defer t.mu.Unlock()
		return len(t.live)
	})
}

// startWaiting lets an over-limit connection wait for a slot, unless as
// many from its IP are waiting already.
func (t *connTracker) startWaiting(c net.Conn) bool {
	key := ipKey(c.RemoteAddr())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiting[key] >= t.maxPerIP {
		return false
	}
	t.waiting[key]++
	return true
}

func (t *connTracker) stopWaiting(c net.Conn) {
	key := ipKey(c.RemoteAddr())
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.waiting[key]--; t.waiting[key] <= 0 {
		delete(t.waiting, key)
	}
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

// refuse answers a connection over a limit and closes it. RFC 5321 §3.8
// allows 421 at any time; it is the greeting here, so the client neither
// hangs nor treats it as permanent: X.7.0 for its own address's limit,
// X.3.2 (system not accepting network messages, RFC 3463) for the
// server's. A fresh socket's send buffer is empty, so the write does not
// block the accept loop. A quiet refusal (implicit TLS) only closes.
func (t *connTracker) refuse(c net.Conn, why refusal, quiet bool) {
	t.counts.refused.Add(1)
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	text, limit := "421 4.7.0 %s too many connections from your address, try again later\r\n", t.maxPerIP
	if why == overTotal {
		text, limit = "421 4.3.2 %s too many connections, try again later\r\n", t.maxTotal
	}
	if !quiet {
		if _, err := fmt.Fprintf(c, text, t.hostname); err != nil {
			t.log.Debug("smtp: writing refusal", "remote", c.RemoteAddr(), "err", err)
		}
	}
	_ = c.Close()
	// Debug, not Info: a flood of refused connections must not flood the log.
	t.log.Debug("smtp: connection refused", "remote", c.RemoteAddr(), "over_total", why == overTotal, "limit", limit)
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
	t.closing.Store(true)
	for _, tc := range t.snapshot() {
		_ = tc.Close()
	}
}

// cutLingering ends every lingering close now, and keeps any from
// starting: the server is closing. go-smtp's Close waits for a
// connection whose Close (ours, lingering) is under way, so this comes
// first.
func (t *connTracker) cutLingering() {
	t.closing.Store(true)
	for _, tc := range t.snapshot() {
		if tc.lingering.Load() {
			_ = tc.Conn.Close()
		}
	}
}

// trackedConn is an accepted connection with an idle read timeout. The
// timeout restarts before every Read, so it measures silence, not the
// length of a transfer (RFC 5321 §4.5.3.2.5/§4.5.3.2.7 time each data
// block and command, not the whole message). A timeout is sticky: once a
// read has timed out, every later read fails at once, so go-smtp cannot
// go on to parse the rest of an abandoned message as commands.
//
// The deadline is also never later than the end of the connection's
// lifetime (connTracker.maxSession after start; sessionGrace more while
// a transaction is under way), which ends a client that keeps the
// connection with commands go-smtp answers without our session (NOOP,
// RSET, VRFY, HELP) and that would each restart an idle timeout.
type trackedConn struct {
	net.Conn
	tracker *connTracker
	key     string
	start   time.Time // when the connection was admitted

	expired   atomic.Bool // sticky read timeout, or drained by Shutdown
	hungUp    atomic.Bool // sticky end of input after a last reply (hangUp)
	busy      atomic.Bool // inside a mail transaction (MAIL..end of data)
	closeOnce sync.Once

	// lingerWanted: the session ends because the client went over a
	// limit while it may still be sending, so Close lingers (linger.go)
	// even if none of its octets wait unread at that moment.
	lingerWanted atomic.Bool
	lingering    atomic.Bool // Close is lingering: cutLingering ends it

	// refusedRcpts counts the RCPTs refused with a 5xx on this
	// connection; it lives here, not in the go-smtp session, so that
	// STARTTLS, which starts a new session, does not reset it.
	refusedRcpts atomic.Int64

	// inputFailed is set once a Read has returned an error: the
	// client's input ended (hang-up, reset, timeout, a limit). go-smtp
	// copies a BDAT chunk through a limited reader, which reports a
	// connection lost inside the chunk as the chunk's end (io.EOF), so
	// after a cut LAST chunk it closes the message's pipe as if the
	// message were whole; the message's reader looks here to tell the
	// two apart (see bodyReader). Every read error ends a go-smtp
	// session, so the flag is never set by a transaction that then
	// goes on.
	inputFailed atomic.Bool

	// gate reads the client's octets as go-smtp will, on a plaintext
	// SMTP or LMTP connection (nil on others), and stops at a BDAT
	// command line go-smtp cannot parse (cmdGate).
	gate *cmdGate

	wmu  sync.Mutex
	held []byte // replies not yet sent (see Write)

	// underTLS: TLS runs above this connection, from the start (an
	// implicit-TLS listener) or since a STARTTLS was answered 220 (the
	// only 220 after the greeting, RFC 5321 §4.2, RFC 3207 §4). A reply
	// of our own (expiredRead) then goes out through session, the TLS
	// connection of a session begun over it (its handshake done), or,
	// before there is one, is left to go-smtp.
	underTLS atomic.Bool
	greeted  atomic.Bool
	session  atomic.Pointer[tlsAbove]
}

// tlsAbove is the TLS connection a session runs over, above a
// trackedConn.
type tlsAbove struct{ net.Conn }

// sessionConn records the connection a go-smtp session begins over:
// when it is not c itself, the TLS connection above c.
func (c *trackedConn) sessionConn(over net.Conn) {
	if c != nil && over != c {
		c.session.Store(&tlsAbove{over})
	}
}

// noteReply watches the replies written for a STARTTLS's 220.
func (c *trackedConn) noteReply(p []byte) {
	if c.underTLS.Load() || !bytes.HasPrefix(p, []byte("220")) {
		return
	}
	if c.greeted.Swap(true) {
		c.underTLS.Store(true)
	}
}

// maxHeld bounds the replies held back; a longer write (a message body
// sent by POP3 RETR) goes out at once.
const maxHeld = 16 << 10

// Write holds replies back until the session next reads, so that the
// lines of a multi-line reply (EHLO, LMTP's per-recipient status) and the
// replies to a group of pipelined commands leave in one TCP write, as
// RFC 2920 §3.1 recommends. The sessions here are strictly
// request-response: every reply is followed by a read, or by Close,
// and both send what is held first.
func (c *trackedConn) Write(p []byte) (int, error) {
	if c.gate != nil {
		c.gate.replied(p)
	}
	if c.tracker.smtpReplies {
		c.noteReply(p)
		if bytes.HasPrefix(p, goSMTPTooLong) {
			c.lingerOnClose()
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.held)+len(p) <= maxHeld {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *trackedConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.flushLocked()
}

// flushLocked sends the held replies under the deadline their writer set.
func (c *trackedConn) flushLocked() error {
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	c.held = c.held[:0]
	if cap(c.held) > 4<<10 {
		c.held = nil // a long reply's buffer is not kept for the session
	}
	return err
}

func (c *trackedConn) Read(p []byte) (int, error) {
	var n int
	var err error
	if c.gate != nil {
		n, err = c.gatedRead(p)
		if errors.Is(err, errUnparsableBDAT) {
			n, err = c.refuseBDAT(p)
		}
	} else {
		n, err = c.read(p)
	}
	if err != nil {
		c.inputFailed.Store(true)
	}
	return n, err
}

// errGateFailed ends a connection whose cmdGate failed (gatedRead).
var errGateFailed = errors.New("frontend: command gate failed")

// gatedRead reads through the gate. go-smtp's command loop has no
// recover, so a fault in the gate would take every session of the
// process down with it: it ends this connection instead (logged with
// its stack), and the failed read keeps a message it was inside from
// being stored (inputFailed), as a hang-up does.
func (c *trackedConn) gatedRead(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			c.tracker.log.Error("smtp: command gate failed, closing the connection", "remote", c.RemoteAddr(),
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.hangUp()
			n, err = 0, errGateFailed
		}
	}()
	return c.gate.read(p, c.read)
}

// refuseBDAT answers a BDAT command line go-smtp cannot parse, which the
// gate kept from it, and ends the connection: go-smtp reads io.EOF and
// closes. A 5xx, not 421: the same line would fail the same way again
// (RFC 5321 §4.2.2's 501, with RFC 3463's X.5.4 for bad arguments, as
// go-smtp answers it), and the chunk that may follow has no known end
// (RFC 3030 §2), so nothing after the line can be read as commands.
func (c *trackedConn) refuseBDAT(p []byte) (int, error) {
	if !c.isHungUp() {
		c.tracker.log.Debug("smtp: BDAT without a readable chunk size, closing", "remote", c.RemoteAddr())
		_, _ = io.WriteString(c, wireLine(replyBDATUnparsable()))
		c.hangUp()
		c.lingerOnClose() // the chunk may be on its way
	}
	return c.read(p)
}

// readFailed reports whether a read of the connection has failed.
func (c *trackedConn) readFailed() bool {
	return c != nil && c.inputFailed.Load()
}

func (c *trackedConn) read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		// Replies the client did not take within WriteTimeout (or
		// took part of) are lost: the session cannot go on in step
		// with it, and go-smtp would read on after a failed read. A
		// client that reads no replies is ended (RFC 5321 §4.5.3.2
		// lets a server close on a timeout), as at a hang-up.
		c.hangUp()
		return 0, err
	}
	if c.hungUp.Load() {
		return 0, io.EOF
	}
	if c.expired.Load() {
		return c.expiredRead()
	}
	deadline, atEnd := c.readDeadline(time.Now())
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		return 0, err
	}
	// expire may have run between the check and the new deadline, and the
	// new deadline would then override its past one: look again.
	if c.expired.Load() {
		return c.expiredRead()
	}
	n, err := c.Conn.Read(p)
	if err != nil && os.IsTimeout(err) {
		if !c.expired.Swap(true) && atEnd {
			c.tracker.log.Info("smtp: session time limit reached, closing",
				"remote", c.RemoteAddr(), "limit", c.tracker.maxSession, "busy", c.busy.Load())
		}
		if n, err := c.expiredRead(); err != os.ErrDeadlineExceeded {
			return n, err // the drain's own answer
		}
	}
	return n, err
}

// expiredRead is a read of an expired connection: a timeout, on which
// go-smtp replies 421 4.4.2 "Idle timeout" and closes; or, for an idle
// connection a drain ended, the tracker's drainReply (RFC 5321 §3.8: 421
// and close, the client to try again later) and the end of input, on
// which go-smtp closes without a word of its own.
func (c *trackedConn) expiredRead() (int, error) {
	t := c.tracker
	if t.drainReply == "" || !t.drained.Load() || c.busy.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	var w io.Writer = c
	if c.underTLS.Load() {
		above := c.session.Load()
		if above == nil {
			// No session over TLS yet, so no finished handshake to
			// write through: go-smtp's own 421 goes out through TLS.
			return 0, os.ErrDeadlineExceeded
		}
		w = above // its record lands in held like any reply
	}
	if !c.hungUp.Swap(true) {
		_, _ = io.WriteString(w, t.drainReply)
	}
	return 0, io.EOF
}

// readDeadline is the deadline of a read starting at now: the idle
// timeout, or the end of the connection's lifetime if that is sooner
// (atEnd). A transaction under way may run sessionGrace past the
// lifetime, so that a message being sent at that moment is finished;
// the grace bounds a client that keeps a transaction open too.
func (c *trackedConn) readDeadline(now time.Time) (deadline time.Time, atEnd bool) {
	deadline = now.Add(c.tracker.readTimeout)
	if c.tracker.maxSession <= 0 {
		return deadline, false
	}
	end := c.start.Add(c.tracker.maxSession)
	if c.busy.Load() {
		end = end.Add(c.tracker.sessionGrace)
	}
	if end.Before(deadline) {
		return end, true
	}
	return deadline, false
}

// hangUp ends the connection after the reply being made: every later
// read sends what is held and then reports io.EOF, on which go-smtp
// closes the connection without a word of its own. A 421 that means
// "closing" (RFC 5321 §3.8) is thus the last line the client reads,
// except for replies to commands it had already pipelined, which
// go-smtp answers from its buffer first (the session refuses those
// itself). Only the connection's own goroutine calls it, between reads.
func (c *trackedConn) hangUp() {
	if c != nil {
		c.hungUp.Store(true)
	}
}

// isHungUp reports whether hangUp was called.
func (c *trackedConn) isHungUp() bool {
	return c != nil && c.hungUp.Load()
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

// Close sends what is held (a last reply, such as 221 or 421) unless a
// flush is under way in another goroutine, which closing then cuts off.
// When the client may still be sending, it lingers first (linger.go):
// TLS's close_notify (if a session runs over TLS above), the held
// replies, FIN, and the client's octets read and dropped, within
// LingerTimeout and LingerMaxBytes.
func (c *trackedConn) Close() error {
	lingers := c.wantsLinger()
	if above := c.session.Load(); lingers && above != nil {
		shutTLS(above.Conn) // its record joins the held replies
	}
	if c.wmu.TryLock() {
		if len(c.held) > 0 {
			_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_ = c.flushLocked()
		}
		c.wmu.Unlock()
	}
	if lingers {
		c.linger()
	}
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.tracker.release(c) })
	return err
}

// goSMTPTooLong starts go-smtp's reply to a command line over its
// limit, after which it closes the connection while the client is
// still sending the line.
var goSMTPTooLong = []byte("500 5.4.0 ")

// lingerOnClose has Close linger: the session ends on the client's
// going over a limit, and the client may still be sending.
func (c *trackedConn) lingerOnClose() {
	if c != nil {
		c.lingerWanted.Store(true)
	}
}

// wantsLinger reports whether Close should linger, unless the server is
// closing: the session asked for it; or TLS runs above and the client
// has not ended its input, since go-smtp's 500 5.4.0 to an endless
// line cannot be seen through TLS, and its octets need not wait unread
// at the very moment of the close (TLS and go-smtp read ahead) to come
// after it; or octets of the client wait unread, which a close would
// answer with a reset. A client that closes on reading the last reply
// (a 221) ends the wait at once.
func (c *trackedConn) wantsLinger() bool {
	if c.tracker.closing.Load() {
		return false
	}
	return c.lingerWanted.Load() || c.underTLS.Load() && !c.inputFailed.Load() || inputPending(c.Conn)
}

// linger runs the lingering close on the connection below, unless the
// server's Close came first (cutLingering, which sees lingering set
// otherwise and closes the connection under it).
func (c *trackedConn) linger() {
	c.lingering.Store(true)
	defer c.lingering.Store(false)
	if c.tracker.closing.Load() {
		return
	}
	linger(c.Conn)
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
//
// A connection over its IP's limit is not refused at once: a client at
// exactly the limit that reconnects right after QUIT can arrive before the
// server has torn its old connection down. Such a connection waits, in a
// goroutine of its own, up to reconnectGrace for a slot, and is refused
// (421) only then. At most maxPerIP connections per IP wait, so a flood
// is still refused straight away and never delays other clients.
//
// Accept runs on the server's accept goroutine and takes connections from
// the listener directly, so an admitted connection costs no hand-off
// between goroutines. A waiter that gets its slot queues its connection
// and wakes a blocked Accept by setting the listener's deadline to the
// past; Accept treats the timeout as that wake-up.
type limitListener struct {
	net.Listener
	tracker     *connTracker
	setDeadline func(time.Time) error // nil: over-limit connections are refused at once
	// quiet refuses by closing only: on an implicit-TLS port the client
	// awaits a handshake, and a plaintext 421 would read as a TLS error.
	quiet bool
	// gateLine, if positive, gives each connection a cmdGate with that
	// line cap (plaintext SMTP and LMTP listeners).
	gateLine int
	gateBufs *sync.Pool

	mu     sync.Mutex
	ready  []*trackedConn // waiters that got a slot, for Accept
	closed bool
}

// reconnectGrace is how long an over-limit connection may wait for a slot.
const reconnectGrace = 500 * time.Millisecond

func newLimitListener(ln net.Listener, t *connTracker, quiet bool, gateLine int) *limitListener {
	l := &limitListener{Listener: ln, tracker: t, quiet: quiet, gateLine: gateLine, gateBufs: newGateBufs()}
	if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
		l.setDeadline = d.SetDeadline
	}
	return l
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		if tc := l.takeReady(); tc != nil {
			return l.gated(tc), nil
		}
		c, err := l.Listener.Accept()
		if err != nil {
			if l.setDeadline != nil && errors.Is(err, os.ErrDeadlineExceeded) {
				// A waiter's wake-up. Clear the deadline before looking
				// at the queue: a waiter queues before it sets the
				// deadline, so one that this clear undoes has queued
				// already.
				if err := l.setDeadline(time.Time{}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, err
		}
		tc, why := l.tracker.admit(c)
		if why == admitted {
			return l.gated(tc), nil
		}
		if why == overTotal || l.setDeadline == nil || !l.tracker.startWaiting(c) {
			l.tracker.refuse(c, why, l.quiet)
			continue
		}
		go l.waitForSlot(c)
	}
}

// gated gives tc a cmdGate if the listener's connections have one; it
// runs before go-smtp reads from tc.
func (l *limitListener) gated(tc *trackedConn) *trackedConn {
	tc.underTLS.Store(l.quiet) // quiet: an implicit-TLS listener
	if l.gateLine > 0 {
		tc.gate = newCmdGate(l.gateLine, l.gateBufs)
	}
	return tc
}

func (l *limitListener) takeReady() *trackedConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ready) == 0 {
		return nil
	}
	tc := l.ready[0]
	l.ready = l.ready[1:]
	return tc
}

func (l *limitListener) waitForSlot(c net.Conn) {
	defer l.tracker.stopWaiting(c)
	deadline := time.Now().Add(reconnectGrace)
	why := overPerIP
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		var tc *trackedConn
		if tc, why = l.tracker.admit(c); why == admitted {
			l.queue(tc)
			return
		}
	}
	l.tracker.refuse(c, why, l.quiet)
}

// queue passes an admitted waiter to Accept and wakes it, or closes the
// connection if the listener is closed meanwhile.
func (l *limitListener) queue(tc *trackedConn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		tc.Close()
		return
	}
	l.ready = append(l.ready, tc)
	l.mu.Unlock()
	_ = l.setDeadline(time.Unix(1, 0))
}

func (l *limitListener) Close() error {
	l.mu.Lock()
	l.closed = true
	ready := l.ready
	l.ready = nil
	l.mu.Unlock()
	for _, tc := range ready {
		tc.Close()
	}
	return l.Listener.Close()
}
