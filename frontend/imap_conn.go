package frontend

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// errIMAPHandedOff ends the library's use of a connection that STARTTLS
// moved to the TLS server.
var errIMAPHandedOff = errors.New("frontend: imap: connection continues under TLS")

// errLibrarySTARTTLS fails a handshake the library started by itself,
// which happens only if imapConn lost track of the client's stream: the
// TLS layer belongs to imapConn.
var errLibrarySTARTTLS = errors.New("frontend: imap: STARTTLS outside imapConn")

// imapListener wraps every accepted connection in an imapConn, under TLS
// first when tls is set (implicit TLS, RFC 8314).
type imapListener struct {
	net.Listener
	srv *IMAPServer
	tls bool
}

func (l *imapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.tls {
		// The handshake runs inside the first write (the greeting), on
		// the session's goroutine: a client that never sends its hello
		// is dropped at the pre-login timer, as a silent one would be.
		c.SetReadDeadline(time.Now().Add(l.srv.cfg.PreAuthTimeout))
		c = tls.Server(c, l.srv.cfg.TLS)
	}
	return newIMAPConn(c, l.srv, l.tls), nil
}

// imapConn is the connection the library sees. TLS, when there is one,
// runs under it, so it always carries plaintext. It does four things:
//
//   - It owns the read deadline: before login, PreAuthTimeout from the
//     connection's start, however busy the client keeps it (a NOOP every
//     50 s would otherwise hold a slot for ever), STARTTLS included;
//     after login, before every read, IdleTimeout, so it measures
//     silence, not the length of a transfer. go-imap's own read
//     deadlines (fixed at 30 s, 5 min and 35 min) are ignored.
//   - It coalesces writes. The library flushes after every response line,
//     so a FETCH of 20 messages was 20 write system calls. Writes are held
//     until the server next reads (it has answered the command), the
//     buffer fills, or imapWriteDelay passes (unsolicited IDLE updates).
//   - It answers ID (RFC 2971) through the library's NOOP, and adds ID to
//     the capability lists the library sends (imap_wire.go).
//   - It performs STARTTLS, then hands the connection to the server's TLS
//     instance of the library, swallowing that instance's greeting: after
//     STARTTLS the client is not authenticated and sends no tag until it
//     has a command (RFC 9051 section 6.2.1), which is a new session's
//     state exactly.
type imapConn struct {
	net.Conn
	srv     *IMAPServer
	idle    time.Duration
	loginBy time.Time // the end of PreAuthTimeout
	secure  bool      // under TLS: implicit, or after STARTTLS
	authed  atomic.Bool
	// account holds the login, set before authed, and checks that it
	// still holds (imap_revoke.go).
	account accountCheck

	// Read side: only the library's reading goroutine touches these.
	in        imapInput
	rbuf      []byte // octets from the client
	rout      []byte // octets for the library; rout[roff:] not yet read
	roff      int
	rerr      error
	startTLS  string       // tag of a STARTTLS waiting for the commands before it
	awaitSent int          // the in.awaitN last given to the write side (litTag)
	idling    bool         // the last command line was IDLE: the next line is its DONE
	sess      *imapSession // the library's session on this connection (QUOTA)
	// quota is a QUOTA command waiting for the commands before it, and
	// later the client's octets after it, not yet scanned.
	quota     *imapQuotaCmd
	later     []byte
	collect   *imapCollect // an ID or QUOTA command read across literals
	hold      string       // tag of a command whose literal is held (imap_appendhold.go)
	handedOff atomic.Bool  // Close may run on the server's goroutine at shutdown
	// slotMoved: after STARTTLS the TLS session took over this
	// connection's slot (MaxConns, per IP); this session's Close must not
	// free it. inherited is set on that TLS connection: its session must
	// not take a second one.
	slotMoved atomic.Bool
	inherited bool

	// Write side, under wmu.
	wmu      sync.Mutex
	wbuf     []byte
	held     int  // where in wbuf an incomplete response line starts, or -1
	longLine bool // the current response line is too long to hold
	dropLine bool // the current response line is being dropped (saveOnly)
	otail    []byte
	olit     int64 // octets of a literal in the response still to pass
	// ocont: the response line just ended announced a literal, so the
	// response goes on after it ("{5}\r\nhello UID 1)\r\n"): no BYE
	// may come before the line that ends it.
	ocont   bool
	pending []imapLocalReply
	cmds    map[string]string // command name by tag, until its tagged response (metrics)
	// saveOnly: tags of SEARCH RETURN (SAVE) commands in flight, whose
	// ESEARCH response is dropped (imapSearchSaveOnly).
	saveOnly map[string]bool
	swallow  bool // drop the greeting: this session continues after STARTTLS
	timer    *time.Timer
	werr     error
	closing  atomic.Bool // Close has begun: flush briefly
	// byeQueued: a shutdown's BYE is in wbuf, and nothing may follow it;
	// byeWanted: it waits for the end of a response half written. bye is
	// that line (imapShutdownBye, or imapByeFor's).
	byeQueued, byeWanted bool
	bye                  string
	// byeSent: the library sent a BYE of its own (LOGOUT's): no other
	// may follow it.
	byeSent bool
	// litTag is the command whose synchronizing literal the client
	// holds back until "+"; litRefused: its tagged response came
	// instead, so the literal will never arrive (imapInput.await).
	litTag     string
	litRefused bool
	// holdTag is the command whose literal the read side holds back,
	// and holdOutcome the library's answer to it (imap_appendhold.go).
	holdTag     string
	holdOutcome imapHoldOutcome
	// appendMore: the APPEND message last judged is followed by more
	// than its command's end (imap_appendend.go); the session's Append
	// reads it as the store reads the message's last octet.
	appendMore atomic.Bool

	// lingerWanted: the session ends on a command or literal over a
	// limit, which the client may still be sending: Close lingers
	// (imap_linger.go).
	lingerWanted atomic.Bool
}

// Write coalescing bounds.
const (
	imapWriteBuffer = 32 << 10
	imapWriteDelay  = time.Millisecond
)

func newIMAPConn(c net.Conn, srv *IMAPServer, secure bool) *imapConn {
	return &imapConn{Conn: c, srv: srv, secure: secure, held: -1, loginBy: time.Now().Add(srv.cfg.PreAuthTimeout),
		idle: srv.cfg.IdleTimeout, rbuf: make([]byte, 4096), in: imapInput{appendMax: srv.cfg.MaxAppendBytes}}
}

func (c *imapConn) Read(p []byte) (int, error) {
	c.wmu.Lock()
	err := c.flushLocked() // the answer goes out before we wait for more
	refused := c.litRefused
	c.litRefused = false
	c.wmu.Unlock()
	if err != nil {
		return 0, err
	}
	if refused && c.in.await {
		c.in.refuseLiteral()
	}
	for c.roff == len(c.rout) {
		c.rout, c.roff = c.rout[:0], 0
		switch {
		case c.handedOff.Load():
			return 0, io.EOF
		case c.startTLS != "":
			return 0, c.takeOver()
		case c.quota != nil:
			// The library has answered every command before it: the
			// answer sees what they did (a LOGIN, an EXPUNGE).
			q, later := c.quota, c.later
			c.quota, c.later = nil, nil
			lines, status := c.sess.quotaReply(q.name, q.args)
			c.answerHere(imapLocalReply{tag: q.tag, lines: lines, status: status})
			c.scan(later)
			continue
		case c.hold != "":
			c.releaseHold()
			continue
		case c.tooBigBye(c.rerr) != "":
			c.queueBye(c.tooBigBye(c.rerr))
			c.lingerWanted.Store(true) // the client may still be sending it
			return 0, io.EOF
		case c.rerr != nil:
			return 0, c.rerr
		case c.collect != nil && c.collect.wantsContinuation():
			// The library has answered everything before the command.
			if err := c.sendContinuation(); err != nil {
				return 0, err
			}
			continue
		case c.in.lit > 1 || c.in.lit > 0 && !c.in.msg:
			// Literal data goes straight to the library, but for an
			// APPEND message's last octet (imap_appendend.go).
			n, err := c.readRaw(p[:min(int64(len(p)), c.in.lit-imapHeldOctets(c.in.msg))])
			c.in.lit -= int64(n)
			if n > 0 {
				c.in.await = false
			}
			if err != nil {
				// The end, as for a command line: the library reads on
				// after it (the literal's rest, its CRLF, the next
				// command), and a read of a live connection after an
				// autologout would wait out another IdleTimeout.
				c.rerr = err
			}
			return n, err
		}
		n, err := c.readRaw(c.rbuf)
		c.scan(c.rbuf[:n])
		if c.rerr == nil {
			c.rerr = err
		}
	}
	n := copy(p, c.rout[c.roff:])
	c.roff += n
	return n, nil
}

// readRaw reads the client's next octets. Octets that start a command
// of a session whose login no longer holds (its mailbox disabled or
// removed, or its password changed, since) are not passed on: the
// session ends there with a BYE (imap_revoke.go).
func (c *imapConn) readRaw(p []byte) (int, error) {
	deadline := c.loginBy
	authed := c.authed.Load()
	if authed {
		deadline = time.Now().Add(c.idle)
	}
	start := authed && c.collect == nil && c.in.atCommandStart()
	n, err := c.drainRead(p, deadline)
	if n > 0 && start && c.loginRevoked() != loginHolds {
		c.queueBye(imapByeFor(c.account.why()))
		return 0, io.EOF
	}
	if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(deadline) {
		return 0, c.autologout(authed)
	}
	return n, err
}

// Autologout (RFC 9051 §7.1.5, RFC 3501 §7.1.5): a server that ends a
// silent session says so in an untagged BYE before it closes, which
// clients show to their users.
const (
	imapAutologoutBye = "* BYE Autologout; idle for too long\r\n"
	imapPreAuthBye    = "* BYE Autologout; no login within the time allowed\r\n"
)

// autologout ends a session whose read deadline passed: its BYE is
// queued (queueBye: never inside a response half written), Close sends
// it under imapCloseFlush, and io.EOF ends the library's session.
func (c *imapConn) autologout(authed bool) error {
	bye := imapPreAuthBye
	if authed {
		bye = imapAutologoutBye
	}
	c.srv.log.Debug("imap: autologout", "remote", c.RemoteAddr(), "authenticated", authed)
	c.queueBye(bye)
	return io.EOF
}

// scan passes the client's octets b on to the library, acting on the
// commands handled here. Whatever follows STARTTLS is dropped: a client
// must wait for the handshake, and octets it sent before are plaintext an
// attacker could have injected.
func (c *imapConn) scan(b []byte) {
scanning:
	for len(b) > 0 {
		if c.collect != nil {
			var err error
			if b, err = c.collect.feed(b); err != nil {
				c.rerr = err
				return
			}
			if !c.collect.ended || c.collectedLocal(b) {
				break
			}
			continue
		}
		var line []byte
		b, c.rout, line = c.in.next(b, c.rout)
		c.appendMore.Store(c.in.more) // before the library reads rout
		if c.in.skipOver {
			c.rerr = errIMAPReadPastTooLong
			return
		}
		if c.in.lineOver {
			c.rerr = errIMAPLineTooLong
			return
		}
		if line == nil && (c.in.tooBig || c.in.overAppend) {
			// The command's start is already the library's: only the
			// end of the session answers it (imap_quirks.go), once
			// the commands before it are answered (Read).
			c.rerr = errIMAPLiteralTooBig
			if c.in.overAppend {
				c.rerr = errIMAPAppendTooBig
			}
			return
		}
		if line == nil && c.in.holdLit && c.holdLiteral(b) {
			break
		}
		if line == nil {
			continue
		}
		tag, name, args, ok := imapCommand(line)
		if ok {
			c.noteCommand(tag, name, args)
			if imapSearchSaveOnly(name, args) {
				c.noteSaveOnly(tag)
			}
		}
		idleEnd := !ok && c.idling && imapIsDone(line)
		c.idling = ok && name == "IDLE" && literalAtEnd(line) < 0
		switch {
		case c.in.overAppend:
			// The library refuses it without reading the message;
			// the session ends there, and the message is never read
			// (imap_quirks.go).
			c.rout = append(c.rout, line...)
			c.rerr = errIMAPAppendTooBig
			return
		case idleEnd:
			// RFC 9051 section 9: "done" in any case ends IDLE; the
			// library takes only "DONE".
			c.rout = append(append(c.rout, "DONE"...), line[len("DONE"):]...)
		case ok && (c.in.tooBig || literalAtEnd(line) >= 0 && (name == "ID" || imapQuotaCommand(name) && c.sess != nil)):
			// Read across its literals here (imap_collect.go); one the
			// library would refuse without answering is read past and
			// refused here (imap_quirks.go).
			if c.in.tooBig {
				c.collect = newIMAPRefused(tag, name, args, imapTooBigStatus)
			} else {
				c.collect = newIMAPCollect(tag, name, args)
			}
			c.in.refuseLiteral()
			if c.collect.ended && c.collectedLocal(b) {
				break scanning
			}
		case ok && literalAtEnd(line) >= 0 && c.refusesPlainLogin(name):
			// Refused here, before "+" asks for a password the
			// library would refuse once it had crossed in the clear.
			c.collect = newIMAPRefused(tag, name, args, imapPrivacyRequiredStatus)
			c.in.refuseLiteral()
			if c.collect.ended && c.collectedLocal(b) {
				break scanning
			}
		case !ok || literalAtEnd(line) >= 0:
			c.rout = append(c.rout, line...)
		case name == "ID":
			c.answerID(tag, args)
		case imapQuotaCommand(name) && c.sess != nil:
			c.holdQuota(tag, name, args, b)
			break scanning
		case name == "STARTTLS" && len(args) == 0 && c.canStartTLS():
			c.startTLS = tag
			return
		default:
			c.rout = append(c.rout, line...)
		}
		if c.in.holdLit && c.holdLiteral(b) {
			break
		}
	}
	if c.in.await && c.in.awaitN != c.awaitSent {
		// Before the library reads the line: its answer, "+" or a
		// refusal, is written after this.
		c.awaitSent = c.in.awaitN
		c.wmu.Lock()
		c.litTag, c.litRefused = string(c.in.tag), false
		c.wmu.Unlock()
	}
}

// holdQuota keeps a QUOTA command to be answered once the library has
// read everything before it (Read), not now: commands pipelined before it
// have not run yet, and the answer depends on them (a LOGIN, an
// EXPUNGE). The octets after it, rest, wait too, to keep the order.
func (c *imapConn) holdQuota(tag, name string, args, rest []byte) {
	c.quota = &imapQuotaCmd{tag: tag, name: name, args: bytes.Clone(args)}
	c.later = bytes.Clone(rest)
}

// collectedLocal answers the command collected across its literals; rest
// is what the client sent after it. It reports whether scanning stops
// there: a QUOTA command waits for the commands before it.
func (c *imapConn) collectedLocal(rest []byte) bool {
	k := c.collect
	c.collect = nil
	switch {
	case k.refused != "":
		c.answerHere(imapLocalReply{tag: k.tag, status: k.refused})
	case k.name == "ID":
		c.answerID(k.tag, k.args)
	default:
		c.holdQuota(k.tag, k.name, k.args, rest)
		return true
	}
	return false
}

// imapQuotaCmd is a QUOTA command read but not yet answered.
type imapQuotaCmd struct {
	tag, name string
	args      []byte
}

// answerID answers ID (RFC 2971), logging the client's list.
func (c *imapConn) answerID(tag string, args []byte) {
	valid := validIDArgs(args)
	c.srv.log.Debug("imap: client ID", "remote", c.RemoteAddr(), "valid", valid, "id", string(args[:min(len(args), 512)]))
	c.answerHere(imapIDReply(tag, valid))
}

// answerHere queues r and passes its command to the library as a NOOP,
// whose tagged OK becomes r (rewriteResponse).
func (c *imapConn) answerHere(r imapLocalReply) {
	c.wmu.Lock()
	c.pending = append(c.pending, r)
	c.wmu.Unlock()
	c.rout = append(c.rout, r.tag+" NOOP\r\n"...)
}

// imapTrackedCommands bounds the commands a connection has in flight
// for metrics; a client pipelining more leaves the rest uncounted.
const imapTrackedCommands = 64

// noteCommand remembers a command's name under its tag, so that its
// tagged response can be counted. UID commands are named with their
// subcommand.
func (c *imapConn) noteCommand(tag, name string, args []byte) {
	if name == "UID" {
		sub, _, _ := bytes.Cut(args, []byte(" "))
		name = "UID " + string(bytes.ToUpper(sub))
	}
	name = c.srv.cmds.known(name)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.cmds == nil {
		c.cmds = map[string]string{}
	}
	if len(c.cmds) < imapTrackedCommands {
		c.cmds[tag] = name
	}
}

// noteSaveOnly remembers a SEARCH whose ESEARCH response must not reach
// the client. A client pipelining more than imapTrackedCommands of them
// gets the rest's ESEARCH, as before: harmless, and bounded memory.
func (c *imapConn) noteSaveOnly(tag string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.saveOnly == nil {
		c.saveOnly = map[string]bool{}
	}
	if len(c.saveOnly) < imapTrackedCommands {
		c.saveOnly[tag] = true
	}
}

// dropSaveOnlyLocked reports whether a complete response line is the
// ESEARCH of a SEARCH RETURN (SAVE), to be dropped, and forgets such a
// search at its tagged response.
func (c *imapConn) dropSaveOnlyLocked(line []byte) bool {
	if len(c.saveOnly) == 0 {
		return false
	}
	if tag, ok := imapESearchTag(line); ok {
		return c.saveOnly[tag]
	}
	if tag, _, ok := bytes.Cut(line, []byte(" ")); ok && line[0] != '*' && line[0] != '+' {
		delete(c.saveOnly, string(tag))
	}
	return false
}

// countTaggedLocked counts the command a tagged response line completes
// (RFC 9051 §7.1: tag SP OK/NO/BAD).
func (c *imapConn) countTaggedLocked(line []byte) {
	if len(c.cmds) == 0 || line[0] == '*' || line[0] == '+' {
		return
	}
	tag, rest, _ := bytes.Cut(line, []byte(" "))
	name, ok := c.cmds[string(tag)]
	if !ok {
		return
	}
	delete(c.cmds, string(tag))
	status, _, _ := bytes.Cut(rest, []byte(" "))
	switch {
	case bytes.EqualFold(status, []byte("OK")):
		c.srv.cmds.count(name, imapResultOK)
	case bytes.EqualFold(status, []byte("NO")):
		c.srv.cmds.count(name, imapResultNo)
	default:
		c.srv.cmds.count(name, imapResultBad)
	}
}

// literalAnswerLocked notes the server's answer to an awaited
// synchronizing literal: "+" lets the client send it; NO or BAD tagged
// with its command's tag refuses it (Read then tells imapInput).
func (c *imapConn) literalAnswerLocked(line []byte) {
	if c.litTag == "" {
		return
	}
	if line[0] == '+' {
		c.litTag = ""
		return
	}
	rest, ok := bytes.CutPrefix(line, []byte(c.litTag+" "))
	if !ok {
		return
	}
	status, _, _ := bytes.Cut(rest, []byte(" "))
	if bytes.EqualFold(status, []byte("NO")) || bytes.EqualFold(status, []byte("BAD")) {
		c.litTag, c.litRefused = "", true
	}
}

// imapPrivacyRequiredStatus refuses a LOGIN whose arguments would be
// sent in the clear where the server takes no plaintext password (the
// library's own refusal, RFC 9051 §7.1 PRIVACYREQUIRED).
const imapPrivacyRequiredStatus = "NO [PRIVACYREQUIRED] TLS is required to authenticate"

// refusesPlainLogin reports whether name is a LOGIN that the library
// will refuse because the connection is not under TLS (LOGINDISABLED).
// RFC 9051 §6.2.3 has the server refuse such a LOGIN; refused at its
// first literal, the command ends before the client sends a password
// for "+" (RFC 9051 §7.5: a synchronizing literal refused is not sent).
func (c *imapConn) refusesPlainLogin(name string) bool {
	return name == "LOGIN" && !c.secure && !c.srv.auth.AllowInsecure()
}

func (c *imapConn) canStartTLS() bool {
	return c.srv.tlsSrv != nil && !c.secure && !c.authed.Load()
}

// takeOver answers STARTTLS, runs the handshake and hands the connection
// to the TLS server. It returns io.EOF, which ends the library's
// plaintext session (its Close leaves the socket alone).
func (c *imapConn) takeOver() error {
	c.wmu.Lock()
	err := c.flushAllLocked()
	if err == nil {
		_, err = c.Conn.Write([]byte(c.startTLS + " OK Begin TLS negotiation now\r\n"))
	}
	c.werr = errIMAPHandedOff
	c.wmu.Unlock()
	c.handedOff.Store(true)
	if err != nil {
		c.Conn.Close()
		return fmt.Errorf("frontend: imap STARTTLS: %w", err)
	}
	c.srv.cmds.count("STARTTLS", imapResultOK)
	// The socket is the TLS session's from here: a drain wakes that
	// session once it starts (trackConn), never the handshake, which a
	// read deadline in the past would fail. A wake that came before is
	// undone here.
	c.srv.trackConn(c, false)
	if err := c.Conn.SetReadDeadline(c.loginBy); err != nil {
		c.Conn.Close()
		return fmt.Errorf("frontend: imap STARTTLS: %w", err)
	}
	tc := tls.Server(c.Conn, c.srv.cfg.TLS)
	ctx, cancel := context.WithDeadline(c.srv.ctx, c.loginBy)
	err = tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		c.Conn.Close()
		return fmt.Errorf("frontend: imap STARTTLS: %w", err)
	}
	next := newIMAPConn(tc, c.srv, true)
	next.swallow, next.inherited, next.loginBy = true, true, c.loginBy
	c.slotMoved.Store(true) // before push: the new session may close first
	if err := c.srv.handoff.push(next); err != nil {
		c.slotMoved.Store(false)
		tc.Close()
		return err
	}
	return io.EOF
}

func (c *imapConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n := len(p)
	if c.byeQueued {
		return n, nil
	}
	if c.swallow {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return n, nil
		}
		c.swallow, p = false, p[i+1:]
	}
	for len(p) > 0 {
		seg, isLit, complete := nextSegment(p, &c.olit)
		p = p[len(seg):]
		var err error
		if isLit {
			err = c.bufferLocked(seg)
		} else {
			err = c.lineLocked(seg, complete)
		}
		if err != nil {
			return 0, err
		}
		if c.byeAtBoundaryLocked() {
			break // what follows the BYE is dropped
		}
	}
	if c.timer == nil && len(c.wbuf) > 0 {
		c.timer = time.AfterFunc(imapWriteDelay, c.flush)
	}
	return n, nil
}

// lineLocked adds part of a response line; complete says it ends the
// line. A line is held whole in wbuf until it is complete, so that it can
// be rewritten, unless it grows past imapHoldLine.
func (c *imapConn) lineLocked(seg []byte, complete bool) error {
	if c.dropLine {
		c.dropLine = !complete
		return nil
	}
	if c.longLine {
		c.otail = appendTail(c.otail, seg)
		if err := c.bufferLocked(seg); err != nil || !complete {
			return err
		}
		c.longLine = false
		c.olit = max(literalAtEnd(c.otail), 0)
		c.ocont = literalAtEnd(c.otail) >= 0
		return nil
	}
	if c.held < 0 {
		c.held = len(c.wbuf)
	}
	c.wbuf = append(c.wbuf, seg...)
	line := c.wbuf[c.held:]
	switch {
	case complete && c.holdAnswerLocked(line):
		c.wbuf, c.held = c.wbuf[:c.held], -1
	case complete && c.dropSaveOnlyLocked(line):
		c.wbuf, c.held = c.wbuf[:c.held], -1
	case complete:
		c.olit = max(literalAtEnd(line), 0)
		c.ocont = literalAtEnd(line) >= 0
		c.literalAnswerLocked(line)
		r := rewriteResponse(line, &c.pending)
		if r == nil {
			r = imapClientError(line, c.cmds)
		}
		if r == nil && string(line) == imapEmptyChallenge {
			r = []byte(imapEmptyBase64)
		}
		if r != nil {
			c.wbuf = append(c.wbuf[:c.held], r...)
			// Counted as the client sees it: a command answered here
			// (QUOTA, ID) by its own status, not its stand-in NOOP's OK.
			line = r[bytes.LastIndexByte(r[:len(r)-1], '\n')+1:]
		}
		c.countTaggedLocked(line)
		c.byeSent = c.byeSent || bytes.HasPrefix(line, []byte("* BYE"))
		c.held = -1
	case len(line) > imapHoldLine && c.dropSaveOnlyLocked(line):
		// A long ESEARCH of a SEARCH RETURN (SAVE): its tag is at the
		// start, so it is dropped as it comes (it has no literal).
		c.wbuf, c.held, c.dropLine = c.wbuf[:c.held], -1, true
	case len(line) > imapHoldLine:
		c.otail = appendTail(c.otail[:0], line)
		c.longLine, c.held = true, -1
	}
	if len(c.wbuf) > imapWriteBuffer {
		return c.flushLocked()
	}
	return nil
}

// bufferLocked adds octets that are never rewritten (literal data, the
// rest of a long line), writing large ones through.
func (c *imapConn) bufferLocked(p []byte) error {
	if len(c.wbuf)+len(p) > imapWriteBuffer {
		if err := c.flushAllLocked(); err != nil {
			return err
		}
		if len(p) > imapWriteBuffer {
			_, c.werr = c.Conn.Write(p)
			return c.werr
		}
	}
	c.wbuf = append(c.wbuf, p...)
	return nil
}

func (c *imapConn) flush() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.flushLocked()
}

// flushLocked writes the buffer up to an incomplete response line, which
// the library is still writing and which stays held.
func (c *imapConn) flushLocked() error {
	end := len(c.wbuf)
	if c.held >= 0 {
		end = c.held
	}
	return c.writeLocked(end)
}

// flushAllLocked writes the whole buffer. It is for the literal data that
// follows a complete line, where nothing is held, and for Close.
func (c *imapConn) flushAllLocked() error {
	c.held = -1
	return c.writeLocked(len(c.wbuf))
}

func (c *imapConn) writeLocked(end int) error {
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if end == 0 || c.werr != nil {
		return c.werr
	}
	wait := c.srv.cfg.WriteTimeout
	if c.closing.Load() {
		wait = imapCloseFlush
	}
	if c.werr = c.Conn.SetWriteDeadline(time.Now().Add(wait)); c.werr != nil {
		return c.werr
	}
	_, c.werr = c.Conn.Write(c.wbuf[:end])
	rest := copy(c.wbuf, c.wbuf[end:])
	c.wbuf = c.wbuf[:rest]
	if c.held >= 0 {
		c.held = 0
	}
	return c.werr
}

// imapCloseFlush is how long Close waits to send what is buffered.
const imapCloseFlush = time.Second

// Close sends what is buffered (a BYE, say) before closing, briefly: a
// write blocked on a client that stopped reading is cut short first. A
// connection handed on by STARTTLS is left open for its new owner. A
// session the server closes while stopping, which has had no BYE, gets
// the shutdown's (RFC 9051 §7.1.5): Shutdown's deadline or Close ended
// it where it stood, mid-command perhaps, but never mid-response
// (queueBye).
func (c *imapConn) Close() error {
	if !c.handedOff.Load() {
		c.closing.Store(true)
		c.Conn.SetWriteDeadline(time.Now().Add(imapCloseFlush))
		if c.srv.stopping() {
			c.queueBye(imapShutdownBye)
		}
	}
	c.wmu.Lock()
	c.flushAllLocked()
	c.wmu.Unlock()
	if c.handedOff.Load() {
		return nil
	}
	c.lingerIfSending()
	return c.Conn.Close()
}

// SetReadDeadline ignores the library's deadlines: Read sets its own.
func (c *imapConn) SetReadDeadline(time.Time) error { return nil }

// SetWriteDeadline and SetDeadline ignore the library's deadlines too:
// writes happen later, when the buffer is flushed, and each sets its own
// (WriteTimeout). The library clears its deadline after every response,
// which would leave a flush blocked on a client that stopped reading.
func (c *imapConn) SetWriteDeadline(time.Time) error { return nil }
func (c *imapConn) SetDeadline(time.Time) error      { return nil }

// imapHandoff is the TLS server's listener for connections that arrive
// through STARTTLS on the plaintext port.
type imapHandoff struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newIMAPHandoff() *imapHandoff {
	return &imapHandoff{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *imapHandoff) push(c net.Conn) error {
	select {
	case l.ch <- c:
		return nil
	case <-l.done:
		return fmt.Errorf("frontend: imap STARTTLS: %w", ErrServerClosed)
	}
}

func (l *imapHandoff) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *imapHandoff) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *imapHandoff) Addr() net.Addr { return imapHandoffAddr{} }

type imapHandoffAddr struct{}

func (imapHandoffAddr) Network() string { return "starttls" }
func (imapHandoffAddr) String() string  { return "starttls" }

// rawIMAPConn finds our imapConn under the library's connection, or nil.
func rawIMAPConn(c net.Conn) *imapConn {
	ic, _ := c.(*imapConn)
	return ic
}
