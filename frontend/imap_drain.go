package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Graceful shutdown of the IMAP server.
//
// Shutdown ends each session where its client loses nothing: at the start
// of its next command. imapConn sees the client's octets command by
// command (imapInput), and the library reads only when it needs more, so
// a read that finds the input at a command's start means that every
// command before it has been answered. There the connection gets
// "* BYE [UNAVAILABLE]" (RFC 9051 §7.1.5; RFC 5530 §3) and is closed. A
// session waiting for a command, or in IDLE, is woken and ended at once;
// one in the middle of a command (an APPEND's literal, a long FETCH)
// finishes it and gets its tagged response first, so an APPEND is never
// cut between its commit and its OK.

// imapShutdownBye is the last line a drained session reads.
const imapShutdownBye = "* BYE [UNAVAILABLE] Server shutting down, please reconnect\r\n"

// Shutdown stops accepting connections and ends every session at its
// next command boundary (see above). When ctx ends first, what is left is
// closed as Close does, and ctx's error is returned.
func (s *IMAPServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.draining.Store(true)
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	// Woken under mu: STARTTLS forgets its connection under mu before
	// the handshake (takeOver), so no wake lands in the middle of one.
	for c := range s.conns {
		c.wake()
	}
	s.mu.Unlock()
	err := closeListenerList(lns, "imap")
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.open.Load() > 0 {
		select {
		case <-ctx.Done():
			s.log.Info("imap: sessions still busy at the end of shutdown, closing them", "open", s.open.Load())
			return errors.Join(err, s.Close(), fmt.Errorf("frontend: imap shutdown: %w", ctx.Err()))
		case <-tick.C:
		}
	}
	return errors.Join(err, s.Close())
}

// trackListener registers ln for Shutdown; it reports false if the
// server is already stopping.
func (s *IMAPServer) trackListener(ln net.Listener, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !on {
		delete(s.listeners, ln)
		return true
	}
	if s.draining.Load() || s.closed.Load() {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

// trackConn registers (on) or forgets a session's connection for
// Shutdown to wake.
func (s *IMAPServer) trackConn(c *imapConn, on bool) {
	if c == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.conns[c] = struct{}{}
		if s.draining.Load() { // Shutdown took its list before this one
			c.wake()
		}
	} else {
		delete(s.conns, c)
	}
}

// stopping reports whether Shutdown or Close has begun.
func (s *IMAPServer) stopping() bool {
	return s.draining.Load() || s.closed.Load()
}

// wake interrupts a read in progress, so that readRaw looks at the
// server's state again.
func (c *imapConn) wake() {
	_ = c.Conn.SetReadDeadline(time.Unix(1, 0))
}

// drainRead is readRaw's read while the session may have to end: at a
// command's start during a drain, or once its mailbox has been disabled
// or removed (imap_revoke.go), it queues the BYE and reports io.EOF,
// which ends the library's session (its Close sends the BYE); a read
// woken by Shutdown or IDLE in the middle of a command reads on.
func (c *imapConn) drainRead(p []byte, deadline time.Time) (int, error) {
	for {
		if err := c.Conn.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		bye := c.byeDue()
		if bye != "" && c.collect == nil && c.in.atCommandStart() {
			c.queueBye(bye)
			return 0, io.EOF
		}
		n, err := c.Conn.Read(p)
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && c.byeDue() != "" && time.Now().Before(deadline) {
			continue
		}
		return n, err
	}
}

// byeDue returns the BYE that ends the session at its next command
// boundary, or "".
func (c *imapConn) byeDue() string {
	switch {
	case c.srv.draining.Load():
		return imapShutdownBye
	case c.account.why() != loginHolds:
		return imapByeFor(c.account.why())
	}
	return ""
}

// queueBye adds the BYE bye to what Close flushes. A response line or
// literal half written (an IDLE update over 4 KiB racing the drain: the
// library flushes it in parts) must not be split: the BYE then waits
// for its end (Write). The BYE is the last line: what the library
// writes after it (IDLE's tagged OK as it ends) is dropped.
func (c *imapConn) queueBye(bye string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil || c.byeWanted || c.byeQueued || c.byeSent {
		return
	}
	c.byeWanted, c.bye = true, bye
	c.byeAtBoundaryLocked()
}

// byeAtBoundaryLocked queues the BYE that queueBye asked for once no
// response is half written: no line held, no literal passing, and no
// line still to come after a literal.
func (c *imapConn) byeAtBoundaryLocked() bool {
	if !c.byeWanted || c.held >= 0 || c.olit > 0 || c.ocont || c.longLine {
		return false
	}
	c.wbuf = append(c.wbuf, c.bye...)
	c.byeWanted, c.byeQueued = false, true
	return true
}
