package frontend

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"powermail/node"
)

// pop3Maildrop is the folder POP3 serves (RFC 1939 §1: the maildrop).
const pop3Maildrop = "INBOX"

// pop3MaxDrain is how much of an over-long line is read and thrown away
// before the connection is closed instead.
const pop3MaxDrain = 64 << 10

// pop3EndlessText is the last reply to a line longer than pop3MaxDrain,
// as SMTP answers 500 5.4.0 and IMAP BYE [TOOBIG] before closing. No
// RFC 2449/3206 response code fits: SYS/TEMP and SYS/PERM are the
// server's troubles, AUTH the credentials', and this is the client's.
const pop3EndlessText = "line too long, closing connection"

// pop3FreeListings is how many CAPA and bare AUTH listings a client may
// ask for before login without their counting as bad commands: enough
// for both before and after STLS (RFC 2595 §4 has the client ask again).
const pop3FreeListings = 4

// pop3ReleaseTimeout bounds the release of a maildrop lock whose taking
// failed in an uncertain way (releaseUncertainLock); the client waits for
// it. BackendTimeout is used if shorter.
const pop3ReleaseTimeout = 5 * time.Second

// pop3PreAuthText is the last reply to a client that did not log in
// within PreAuthTimeout. There is no fitting RFC 2449/3206 response code:
// the condition is neither the system's nor the credentials'.
const pop3PreAuthText = "login took too long, closing connection"

// pop3ShutdownText answers a login that a shutdown overtook (RFC 3206
// SYS/TEMP: the same login later may well succeed).
const pop3ShutdownText = "[SYS/TEMP] server shutting down, try again"

var (
	errPOP3LineTooLong = errors.New("pop3: line too long")
	errPOP3Flood       = errors.New("pop3: endless line")
)

// pop3State is the RFC 1939 §3 session state. UPDATE is not a state the
// session waits in: QUIT in TRANSACTION performs it and ends the session.
type pop3State int

const (
	pop3Authorization pop3State = iota
	pop3Transaction
)

// pop3Message is one message of the session's snapshot.
type pop3Message struct {
	uid       uint32
	hash      string
	size      int64
	deleted   bool
	retrieved bool   // sent whole by RETR: \Seen at QUIT
	uidl      string // kept from a previous server, or "" (keepUIDLs)
}

// pop3Session is one connection. It runs on one goroutine and needs no
// locking; Close reaches it only by cancelling ctx and closing the
// connection.
type pop3Session struct {
	srv *POP3Server
	ctx context.Context
	log *slog.Logger
	id  string // unique session ID, part of the lock holder
	ip  string // the client's IP (or address), for logins

	tc     *trackedConn // the accepted connection: a drain spares it once logged in
	conn   net.Conn     // tc, or TLS over it
	r      *bufio.Reader
	w      *bufio.Writer
	secure bool // under TLS (implicit or after STLS)

	state    pop3State
	preAuth  *pop3PreAuth // the time limit until login
	bad      int          // bad commands and failed logins so far
	listings int          // CAPA and bare AUTH before login so far
	user     string       // name from USER, waiting for PASS
	quit     bool         // end the session after this command
	fatal    bool         // end it without flushing (a RETR cut off midway)
	// status is the current command's first status line: 0 none yet,
	// '+' for +OK, '-' for -ERR (a "+ " SASL challenge is neither).
	status byte

	// TRANSACTION state.
	addr       string
	uidValid   uint32
	folderID   uint64 // with uidValid: the maildrop the session's UIDs are of
	msgs       []pop3Message
	unlock     func(context.Context) error
	lockCancel context.CancelFunc // ends the lock's lease context
	buf        []byte             // body read buffer, allocated on first RETR
	account    accountCheck       // does the login still hold? (pop3revoke.go)
	updated    bool               // QUIT's UPDATE state committed the deletions
}

// handle runs one connection to its end and releases everything it
// holds. No failure of the session escapes it: nothing below should
// panic on any input (FuzzPOP3Session checks), and if a bug does, the
// panic ends this connection only, after the lock is released, rather
// than the whole node.
func (s *POP3Server) handle(tc *trackedConn, implicitTLS bool) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("pop3: session panicked", "remote", fmt.Sprint(tc.RemoteAddr()), "panic", v, "stack", string(debug.Stack()))
		}
	}()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	defer tc.Close()
	ip := peerIP(tc.RemoteAddr())
	ss := &pop3Session{
		srv: s,
		ctx: ctx,
		id:  rand.Text(),
		ip:  ip,
		tc:  tc,
	}
	ss.log = s.log.With("remote", fmt.Sprint(tc.RemoteAddr()), "session", ss.id)
	ss.setConn(tc)
	ss.preAuth = startPOP3PreAuth(s.cfg.PreAuthTimeout, tc.expire)
	defer ss.preAuth.stop()
	defer ss.releaseLock()

	if implicitTLS {
		if !ss.handshake(tc) {
			return
		}
	}
	ss.run()
	ss.logSummary()
}

// logSummary logs what a session that logged in did, one line when it
// ends, as an administrator reads a POP3 server's log for a user who
// says mail went missing: how many messages the maildrop held, how many
// were retrieved whole and deleted, and whether QUIT committed the
// deletions (a session cut off commits none, RFC 1939 §6).
func (ss *pop3Session) logSummary() {
	if ss.addr == "" {
		return
	}
	var size, retr, retrBytes, del, delBytes int64
	for _, m := range ss.msgs {
		size += m.size
		if m.retrieved {
			retr, retrBytes = retr+1, retrBytes+m.size
		}
		if m.deleted {
			del, delBytes = del+1, delBytes+m.size
		}
	}
	ss.log.Info("pop3: session ended", "user", ss.addr, "messages", len(ss.msgs), "bytes", size,
		"retrieved", retr, "retrieved_bytes", retrBytes, "deleted", del, "deleted_bytes", delBytes, "committed", ss.updated)
}

// setConn (re)builds the buffered reader and writer over c.
func (ss *pop3Session) setConn(c net.Conn) {
	cfg := ss.srv.cfg
	ss.conn = c
	ss.r = bufio.NewReaderSize(c, max(cfg.MaxLineLength, 4096))
	ss.w = bufio.NewWriterSize(pop3DeadlineWriter{c: c, d: cfg.WriteTimeout}, 32<<10)
}

// pop3DeadlineWriter gives every write to the connection its own
// deadline, so a slow but live client can take a long RETR while one
// that stopped reading is dropped.
type pop3DeadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (w pop3DeadlineWriter) Write(p []byte) (int, error) {
	if err := w.c.SetWriteDeadline(time.Now().Add(w.d)); err != nil {
		return 0, err
	}
	return w.c.Write(p)
}

// handshake runs a TLS server handshake over c and switches the session
// to it.
func (ss *pop3Session) handshake(c net.Conn) bool {
	cfg := ss.srv.cfg
	tconn := tls.Server(c, cfg.TLS)
	_ = c.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
	ctx, cancel := context.WithTimeout(ss.ctx, cfg.IdleTimeout)
	defer cancel()
	if err := tconn.HandshakeContext(ctx); err != nil {
		ss.log.Debug("pop3: TLS handshake failed", "err", err)
		return false
	}
	ss.setConn(tconn)
	ss.tc.sessionConn(tconn) // a lingering close sends its close_notify
	ss.secure = true
	return true
}

// run is the command loop: greeting, then one command at a time. Replies
// are buffered and flushed when no further pipelined command is waiting
// (RFC 2449 §6.6 PIPELINING).
func (ss *pop3Session) run() {
	ss.ok("%s POP3 server ready", ss.srv.cfg.Hostname)
	for !ss.quit {
		if ss.r.Buffered() == 0 {
			if err := ss.w.Flush(); err != nil {
				ss.log.Debug("pop3: write", "err", err)
				return
			}
		}
		line, err := ss.readLine()
		switch {
		case errors.Is(err, errPOP3LineTooLong):
			ss.badCommand("line too long")
			ss.srv.cmds.count("", pop3Err)
		case errors.Is(err, errPOP3Flood):
			ss.readFailed(err)
			ss.srv.cmds.count("", pop3Err)
		case err != nil:
			ss.readFailed(err)
		default:
			ss.command(line)
		}
		if ss.fatal {
			return
		}
		if !ss.quit && ss.bad >= ss.srv.cfg.MaxBadCommands {
			ss.errReply("too many bad commands, closing connection")
			ss.tc.lingerOnClose() // more may be pipelined behind them
			ss.quit = true
		}
	}
	if err := ss.w.Flush(); err != nil {
		ss.log.Debug("pop3: write", "err", err)
	}
}

// readFailed ends the session after a read failed. EOF, a lost
// connection or the autologout timer close it without a reply and
// without the UPDATE state (RFC 1939 §3); a client that has used up
// PreAuthTimeout without logging in, or sent a line past pop3MaxDrain
// (RFC 2449 §4 bounds command lines), is told so first. The client may
// still be sending that line: the close lingers (linger.go), so that
// the reply is not lost to a reset, as with SMTP's and IMAP's.
func (ss *pop3Session) readFailed(err error) {
	if errors.Is(err, errPOP3Flood) {
		ss.log.Debug("pop3: line without end, closing", "read", pop3MaxDrain)
		ss.errReply(pop3EndlessText)
		ss.tc.lingerOnClose() // the rest of the line is on its way
		ss.quit = true
		return
	}
	if ss.state == pop3Authorization && ss.preAuth.expired() {
		ss.log.Debug("pop3: no login in time, closing", "limit", ss.srv.cfg.PreAuthTimeout)
		ss.errReply(pop3PreAuthText)
		ss.quit = true
		return
	}
	ss.log.Debug("pop3: session ends", "err", err)
	ss.fatal = true
}

// readLine reads one line of at most MaxLineLength octets (CRLF
// included) and returns it without the line end; a bare LF also ends a
// line. A longer line is read and dropped, up to pop3MaxDrain octets, and
// reported as errPOP3LineTooLong; memory stays bounded by the reader's
// buffer.
func (ss *pop3Session) readLine() (string, error) {
	drained := 0
	for {
		chunk, err := ss.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if drained += len(chunk); drained > pop3MaxDrain {
				return "", errPOP3Flood
			}
			continue
		}
		if err != nil {
			return "", err
		}
		if drained > 0 || len(chunk) > ss.srv.cfg.MaxLineLength {
			return "", errPOP3LineTooLong
		}
		chunk = chunk[:len(chunk)-1]
		if n := len(chunk); n > 0 && chunk[n-1] == '\r' {
			chunk = chunk[:n-1]
		}
		return string(chunk), nil
	}
}

// ok writes a +OK reply line.
func (ss *pop3Session) ok(format string, args ...any) {
	ss.line("+OK " + fmt.Sprintf(format, args...))
}

// errReply writes a -ERR reply line; text may start with an RFC 2449
// response code in brackets.
func (ss *pop3Session) errReply(text string) {
	ss.line("-ERR " + text)
}

// listing counts a CAPA or a bare AUTH before login. Past the first
// pop3FreeListings each counts towards MaxBadCommands: they are harmless,
// but a client that repeats them is only holding its connection.
func (ss *pop3Session) listing() {
	if ss.state != pop3Authorization {
		return
	}
	if ss.listings++; ss.listings > pop3FreeListings {
		ss.bad++
	}
}

// badCommand replies -ERR and counts the command against MaxBadCommands.
func (ss *pop3Session) badCommand(text string) {
	ss.bad++
	ss.errReply(text)
}

// line writes one reply line. Write errors are sticky in the
// bufio.Writer and surface at the next flush.
func (ss *pop3Session) line(s string) {
	if ss.status == 0 {
		switch {
		case strings.HasPrefix(s, "+OK"):
			ss.status = '+'
		case strings.HasPrefix(s, "-ERR"):
			ss.status = '-'
		}
	}
	_, _ = ss.w.WriteString(s)
	_, _ = ss.w.WriteString("\r\n")
}

// command parses and runs one command line (RFC 1939 §3: a keyword of
// three or four characters, case-insensitive, then arguments separated by
// single spaces).
func (ss *pop3Session) command(line string) {
	verb, rest, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	args := strings.Fields(rest)
	ss.status = 0
	defer func() { ss.srv.cmds.count(verb, pop3Result(ss.status)) }()
	if ss.state == pop3Transaction && ss.loginRevoked() {
		return
	}

	// Valid in both states.
	switch verb {
	case "CAPA":
		ss.capa()
		return
	case "QUIT":
		ss.quitCommand()
		return
	}
	if ss.state == pop3Authorization {
		switch verb {
		case "USER":
			ss.userCommand(rest)
		case "PASS":
			ss.passCommand(rest)
		case "AUTH":
			ss.authCommand(args)
		case "STLS":
			ss.stls()
		case "APOP":
			// We keep only password hashes, so APOP's shared secret
			// (RFC 1939 §7) is not available.
			ss.badCommand("APOP not supported")
		case "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL":
			ss.badCommand("not logged in")
		default:
			ss.badCommand("unknown command")
		}
		return
	}
	switch verb {
	case "STAT":
		if len(args) != 0 {
			ss.badCommand("STAT takes no arguments")
			return
		}
		n, size := ss.totals()
		ss.ok("%d %d", n, size)
	case "LIST":
		ss.listCommand(args, "scan listing follows", func(i int) string {
			return strconv.FormatInt(ss.msgs[i].size, 10)
		})
	case "UIDL":
		ss.listCommand(args, "unique-id listing follows", ss.uidl)
	case "RETR":
		if len(args) != 1 {
			ss.badCommand("usage: RETR msg")
			return
		}
		if i, ok := ss.msgArg(args[0]); ok && ss.sendBody(i, -1) {
			ss.msgs[i].retrieved = true
		}
	case "TOP":
		if len(args) != 2 {
			ss.badCommand("usage: TOP msg n")
			return
		}
		n, ok := pop3LineCount(args[1])
		if !ok {
			ss.badCommand("invalid line count")
			return
		}
		if i, ok := ss.msgArg(args[0]); ok {
			_ = ss.sendBody(i, n) // TOP never sets \Seen
		}
	case "DELE":
		if len(args) != 1 {
			ss.badCommand("usage: DELE msg")
			return
		}
		if i, ok := ss.msgArg(args[0]); ok {
			ss.msgs[i].deleted = true
			ss.ok("message %d deleted", i+1)
		}
	case "RSET":
		// RFC 1939 §5: unmark the deleted messages. The \Seen that QUIT
		// would set for what RETR sent is forgotten too (pop3seen.go):
		// RSET leaves the maildrop as the session found it.
		for i := range ss.msgs {
			ss.msgs[i].deleted = false
			ss.msgs[i].retrieved = false
		}
		n, size := ss.totals()
		ss.ok("maildrop has %s (%d octets)", pop3Count(n), size)
	case "NOOP":
		ss.line("+OK")
	case "USER", "PASS", "AUTH", "STLS", "APOP":
		ss.badCommand("already logged in")
	default:
		ss.badCommand("unknown command")
	}
}

// capa answers CAPA (RFC 2449 §5). What is offered depends on the state
// and on whether a plaintext password may be sent now. EXPIRE NEVER
// (§6.7): the server deletes no message on its own, so a client that
// leaves mail on the server may count on it staying. LOGIN-DELAY (§6.5)
// is not offered: no delay between logins is enforced (failed ones are
// slowed by the Authenticator).
func (ss *pop3Session) capa() {
	ss.listing()
	ss.ok("capability list follows")
	for _, c := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER"} {
		ss.line(c)
	}
	if ss.state == pop3Authorization {
		if ss.plainAllowed() {
			ss.line("USER")
			ss.line("SASL PLAIN")
		}
		if ss.srv.cfg.TLS != nil && !ss.secure {
			ss.line("STLS")
		}
	}
	ss.line("IMPLEMENTATION PowerMail")
	ss.line(".")
}

// stls upgrades the connection to TLS (RFC 2595 §4).
func (ss *pop3Session) stls() {
	switch {
	case ss.srv.cfg.TLS == nil:
		ss.badCommand("STLS not available")
		return
	case ss.secure:
		ss.badCommand("already using TLS")
		return
	}
	ss.ok("begin TLS negotiation")
	if err := ss.w.Flush(); err != nil {
		ss.fatal = true
		return
	}
	// Anything the client sent after STLS, before the handshake, was
	// sent in the clear and could have been injected by a man in the
	// middle: refuse to go on rather than act on it.
	if ss.r.Buffered() > 0 {
		ss.log.Info("pop3: plaintext data after STLS, closing")
		ss.fatal = true
		return
	}
	if !ss.handshake(ss.conn) {
		ss.fatal = true
		return
	}
	ss.user = "" // RFC 2595 §4: forget what was learned before TLS
}

// quitCommand ends the session. In TRANSACTION it is the UPDATE state
// (RFC 1939 §6): the deleted messages are expunged, and only then is
// success reported.
func (ss *pop3Session) quitCommand() {
	ss.quit = true
	if ss.state == pop3Authorization {
		ss.ok("%s POP3 server signing off", ss.srv.cfg.Hostname)
		return
	}
	ss.markRetrievedSeen()
	var uids []uint32
	for _, m := range ss.msgs {
		if m.deleted {
			uids = append(uids, m.uid)
		}
	}
	if len(uids) > 0 {
		ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.BackendTimeout)
		removed, err := ss.srv.store.Expunge(ctx, ss.addr, pop3Maildrop, uids, false,
			node.FolderCheck{ID: ss.folderID, UIDValidity: ss.uidValid})
		cancel()
		if errors.Is(err, node.ErrNoFolder) {
			// The mailbox was removed and added again since the login:
			// these UIDs name the new maildrop's messages, not the ones
			// the client deleted.
			ss.releaseLock()
			ss.log.Warn("pop3: maildrop replaced during the session; nothing expunged", "err", err)
			ss.errReply("maildrop was removed or replaced during the session; no message was removed")
			return
		}
		if err != nil {
			ss.releaseLock()
			ss.log.Warn("pop3: expunge failed", "err", err, "uids", len(uids))
			ss.errReply("[SYS/TEMP] some deleted messages not removed, try again later")
			return
		}
		ss.log.Info("pop3: expunged", "requested", len(uids), "removed", len(removed))
	}
	// Release before replying, so that a client that reconnects at once
	// does not find its own lock.
	ss.releaseLock()
	ss.updated = true
	n, _ := ss.totals()
	ss.ok("%s POP3 server signing off (%s left)", ss.srv.cfg.Hostname, pop3Count(n))
}

// listCommand serves LIST and UIDL (RFC 1939 §5, §7): one message with an
// argument, else every message not marked deleted.
func (ss *pop3Session) listCommand(args []string, title string, value func(int) string) {
	switch len(args) {
	case 0:
		ss.ok("%s", title)
		for i, m := range ss.msgs {
			if !m.deleted {
				ss.line(strconv.Itoa(i+1) + " " + value(i))
			}
		}
		ss.line(".")
	case 1:
		if i, ok := ss.msgArg(args[0]); ok {
			ss.ok("%d %s", i+1, value(i))
		}
	default:
		ss.badCommand("too many arguments")
	}
}

// uidl is message i's unique-id (RFC 1939 §7: 1 to 70 characters from
// 0x21 to 0x7E): the one kept from a previous server (keepUIDLs), else
// "<UIDVALIDITY>.<UID>". Both come from the replicated directory, so the
// same message has the same unique-id on every node and after any
// restart, and a unique-id is never reused (Promise 4).
func (ss *pop3Session) uidl(i int) string {
	if id := ss.msgs[i].uidl; id != "" {
		return id
	}
	return strconv.FormatUint(uint64(ss.uidValid), 10) + "." + strconv.FormatUint(uint64(ss.msgs[i].uid), 10)
}

// msgArg parses a message-number and checks that it names a message not
// marked deleted; if not, it replies.
func (ss *pop3Session) msgArg(s string) (int, bool) {
	n, ok := pop3Number(s)
	if !ok {
		ss.badCommand("invalid message number")
		return 0, false
	}
	if n < 1 || n > uint64(len(ss.msgs)) {
		ss.errReply("no such message")
		return 0, false
	}
	i := int(n - 1)
	if ss.msgs[i].deleted {
		ss.errReply(fmt.Sprintf("message %d already deleted", n))
		return 0, false
	}
	return i, true
}

// pop3Number parses a non-negative decimal argument: digits only, at
// most 9 of them (RFC 1939 §3: arguments are at most 40 characters; a
// maildrop never holds 10^9 messages).
func pop3Number(s string) (uint64, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// pop3MaxArg is the longest argument RFC 1939 §3 allows.
const pop3MaxArg = 40

// pop3MaxTop caps TOP's line count: no body has more lines.
const pop3MaxTop = 1 << 30

// pop3LineCount parses TOP's line count, a non-negative number of any
// size an argument may hold (RFC 1939 §3, §7), capped at pop3MaxTop:
// clients ask for a whole message with a count such as 2^32-1.
func pop3LineCount(s string) (int, bool) {
	if s == "" || len(s) > pop3MaxArg {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = min(n*10+int(c-'0'), pop3MaxTop)
	}
	return n, true
}

// totals counts the messages not marked deleted and their octets (RFC
// 1939 §5 STAT).
func (ss *pop3Session) totals() (int, int64) {
	var n int
	var size int64
	for _, m := range ss.msgs {
		if !m.deleted {
			n++
			size += m.size
		}
	}
	return n, size
}

// sendBody answers RETR (lines < 0) or TOP (lines >= 0) for message i,
// streaming the body, and reports whether it was sent whole (into the
// write buffer). If the body cannot be opened, the reply is -ERR. If
// it fails after +OK was sent, the connection is closed without the
// terminating dot, so the client cannot take a truncated message for a
// whole one.
func (ss *pop3Session) sendBody(i, lines int) bool {
	m := ss.msgs[i]
	// The body reader is bound to its context for every read, so the
	// open is bounded by a timer and the stream by the write timeout.
	ctx, cancel := context.WithCancel(ss.ctx)
	defer cancel()
	timer := time.AfterFunc(ss.srv.cfg.BackendTimeout, cancel)
	body, err := ss.srv.store.OpenBody(ctx, m.hash)
	if !timer.Stop() {
		if err == nil {
			body.Close()
		}
		err = fmt.Errorf("%w: open body: %v", node.ErrUnavailable, context.DeadlineExceeded)
	}
	if err != nil {
		if ss.expungedElsewhere(m.uid) {
			ss.errReply("message was removed by another session")
			return false
		}
		ss.errReply(ss.replyFor(err, "open body"))
		return false
	}
	defer body.Close()
	if lines < 0 {
		ss.ok("%d octets", m.size)
	} else {
		ss.ok("top of message follows")
	}
	if ss.buf == nil {
		ss.buf = make([]byte, 32<<10)
	}
	if err := pop3WriteBody(ss.w, body, lines, ss.buf); err != nil {
		ss.log.Warn("pop3: sending message failed", "uid", m.uid, "err", err)
		ss.fatal = true
		return false
	}
	return true
}

// replyFor maps a backend error to -ERR text with an RFC 2449 response
// code, and logs errors that are not the client's doing.
func (ss *pop3Session) replyFor(err error, op string) string {
	switch {
	case errors.Is(err, ErrInsecureAuth):
		return ss.insecureText()
	case errors.Is(err, ErrThrottled):
		return "[SYS/TEMP] too many login attempts, try again later"
	case errors.Is(err, node.ErrUnavailable), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		ss.log.Info("pop3: backend unavailable", "op", op, "err", err)
		return "[SYS/TEMP] temporarily unavailable, try again later"
	case errors.Is(err, node.ErrAuthFailed):
		return "[AUTH] invalid user name or password"
	case errors.Is(err, node.ErrLocked):
		return "[IN-USE] maildrop is in use by another session"
	case errors.Is(err, node.ErrNoFolder), errors.Is(err, node.ErrInvalidArgument):
		ss.log.Warn("pop3: maildrop unusable", "op", op, "err", err)
		return "[SYS/PERM] maildrop unavailable"
	}
	ss.log.Error("pop3: unexpected backend error", "op", op, "err", err)
	return "[SYS/TEMP] local error, try again later"
}

// pop3Count is "1 message" or "n messages", for the replies a person
// may read.
func pop3Count(n int) string {
	if n == 1 {
		return "1 message"
	}
	return fmt.Sprintf("%d messages", n)
}
