package frontend

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// errUnparsableBDAT is what cmdGate.read reports for a BDAT command line
// go-smtp cannot parse: the connection is to be closed (see cmdGate).
var errUnparsableBDAT = errors.New("frontend: BDAT command line without a readable chunk size")

// cmdGate sits between a plaintext SMTP or LMTP connection and go-smtp,
// and reads the client's octets as go-smtp will: command lines, BDAT
// chunks, DATA bodies. It exists for one case go-smtp gets wrong: a
// BDAT whose size it cannot parse (`BDAT 10 FOO`, `BDAT -1`, a size of
// 2^32 or more, no size) gets 501 from go-smtp, which then reads the
// chunk the client sent behind it as commands. Such a chunk's end
// cannot be known (RFC 3030 §2: the chunk follows its command whatever
// the reply), so the stream cannot be resynchronised, and a chunk of
// "RSET", "MAIL FROM", ... lines would run as a transaction. The gate
// hands go-smtp no such line: the server answers it `501 5.5.4` and
// closes the connection (trackedConn.Read).
//
// To tell a command line from message content, the gate hands go-smtp
// one command line per read, so that go-smtp has answered every line
// before the gate looks at the next, and the reply says what follows:
// 354 a DATA body (passed on up to go-smtp's end marker), 334 an AUTH
// response, and 220 after a line a TLS handshake (STARTTLS), after
// which the gate passes everything on unread. A BDAT line go-smtp
// parses is followed by exactly its chunk, whatever go-smtp replies
// (it reads a refused chunk past), which the gate passes on unread.
// Under TLS the gate would see records, not lines, and go-smtp needs
// the *tls.Conn itself, so an implicit-TLS listener has no gate and
// one ends at STARTTLS (DESIGN.md, Not yet).
//
// One goroutine at a time calls read: the connection's own, or, for an
// LMTP DATA body, go-smtp's LMTPData goroutine, which reads the rest of
// a refused body while the connection's goroutine writes the
// per-recipient replies. replied, called from Write, thus touches
// nothing but reply.
type cmdGate struct {
	// lineCap is longer than any command line go-smtp accepts: a line
	// that grows past it unended is passed on unjudged, and go-smtp
	// closes the connection for its length.
	lineCap int

	mode      gateMode
	chunkLeft int64 // gateChunk: octets of the chunk still to pass on
	dataState int   // gateBody: go-smtp's end-of-data state
	lineLeft  int   // gateCommand: octets of a judged line still to pass on
	answered  bool  // a unit was passed on whole; its reply decides what follows
	notCmd    bool  // the next line is no command (an AUTH response)

	pending []byte // read from the connection, not yet passed on
	// readErr is a read error held back behind the part of a line read
	// before it, to be reported after that part, as go-smtp's buffered
	// reader would have: it then takes that part for a whole line.
	readErr error
	reply   atomic.Int32

	// bufs holds the listener's read buffers; arr, when not nil, is the
	// one pending lies in, given back once pending is empty, so that a
	// batch of pipelined commands costs no allocation.
	bufs *sync.Pool
	arr  *[gateReadSize]byte
}

type gateMode uint8

const (
	gateCommand gateMode = iota
	gateChunk
	gateBody
	gateOff
	gateRefused
)

// gateReadSize is how much the gate reads at a time for command lines:
// go-smtp's own read buffer, so that no more pipelined commands are
// read ahead than before (hangUp relies on that bound).
const gateReadSize = 4096

func newCmdGate(lineCap int, bufs *sync.Pool) *cmdGate {
	return &cmdGate{lineCap: lineCap, bufs: bufs}
}

// newGateBufs is the pool of read buffers a listener's gates share.
func newGateBufs() *sync.Pool {
	return &sync.Pool{New: func() any { return new([gateReadSize]byte) }}
}

// release gives arr back; pending no longer lies in it.
func (g *cmdGate) release() {
	if g.arr != nil {
		g.bufs.Put(g.arr)
		g.arr = nil
	}
}

// replied records the code of a reply line go-smtp wrote. Once the gate
// is off (gateOff), the code is never looked at again.
func (g *cmdGate) replied(p []byte) {
	if len(p) < 3 {
		return
	}
	code, err := strconv.Atoi(string(p[:3]))
	if err == nil {
		g.reply.Store(int32(code))
	}
}

// read fills p for go-smtp from src (the connection).
func (g *cmdGate) read(p []byte, src func([]byte) (int, error)) (int, error) {
	if err := g.readErr; err != nil && g.lineLeft == 0 {
		// Before the reply to the part is looked at: go-smtp answers it
		// only after this read.
		g.readErr = nil
		return 0, err
	}
	if g.answered {
		g.answered = false
		g.follow(int(g.reply.Load()))
	}
	if g.lineLeft > 0 {
		// The rest of a line judged whole, longer than go-smtp's read:
		// a BDAT line's chunk follows the line's end, not its judging.
		return g.readCommand(p, src)
	}
	switch g.mode {
	case gateOff:
		return src(p)
	case gateRefused:
		return 0, errUnparsableBDAT
	case gateChunk:
		n, err := g.take(p[:min(int64(len(p)), g.chunkLeft)], src)
		g.chunkLeft -= int64(n)
		if g.chunkLeft == 0 {
			g.unitDone(gateCommand)
		}
		return n, err
	case gateBody:
		n, err := g.take(p, src)
		if end := g.bodyEnd(p[:n]); end < n {
			g.unread(p[end:n])
			n = end
		}
		return n, err
	}
	return g.readCommand(p, src)
}

// follow sets what comes after a unit from go-smtp's reply to it.
func (g *cmdGate) follow(code int) {
	switch code {
	case 354: // RFC 5321 §4.1.1.4: the DATA body follows
		g.mode, g.dataState = gateBody, 0
	case 334: // RFC 4954 §4: a response line follows
		g.notCmd = true
	case 220: // RFC 3207 §4: a TLS handshake follows
		// go-smtp drops what it had read behind STARTTLS (RFC 3207
		// §4.2: it is not to be run under TLS); so does the gate.
		g.mode, g.pending = gateOff, nil
		g.release()
	}
}

// unitDone marks the end of what go-smtp will answer, and the mode of
// what follows unless the reply says otherwise.
func (g *cmdGate) unitDone(next gateMode) {
	g.mode = next
	g.answered = true
	g.reply.Store(0)
}

// readCommand passes on one command line, judged whole first.
func (g *cmdGate) readCommand(p []byte, src func([]byte) (int, error)) (int, error) {
	if g.lineLeft == 0 {
		line, err := g.nextLine(src)
		if line < 0 {
			return 0, err
		}
		g.lineLeft = line
		if err := g.judge(g.pending[:line]); err != nil {
			// A read error behind the line is not reported: the line
			// is answered 501 and the connection closed (refuseBDAT).
			g.mode, g.pending, g.lineLeft, g.readErr = gateRefused, nil, 0, nil
			g.release()
			return 0, err
		}
	}
	n := copy(p, g.pending[:g.lineLeft])
	g.consume(n)
	g.lineLeft -= n
	if g.lineLeft == 0 {
		g.unitDone(g.mode)
		if g.mode == gateChunk && g.chunkLeft == 0 {
			g.mode = gateCommand
		}
	}
	return n, nil
}

// nextLine reads until pending holds a whole line and returns its length,
// line end included. Over lineCap it returns what pending holds, to be
// passed on unjudged; at a read error, what pending holds, which go-smtp
// takes for a line too once it reads the error (readErr) behind it. It returns -1 and the error when pending is
// empty at a read error.
func (g *cmdGate) nextLine(src func([]byte) (int, error)) (int, error) {
	for from := 0; ; {
		if i := bytes.IndexByte(g.pending[from:], '\n'); i >= 0 {
			return from + i + 1, nil
		}
		from = len(g.pending)
		if len(g.pending) > g.lineCap {
			g.notCmd = true // go-smtp ends the connection for its length
			return len(g.pending), nil
		}
		if cap(g.pending)-len(g.pending) < gateReadSize {
			if len(g.pending) == 0 && g.bufs != nil {
				g.arr = g.bufs.Get().(*[gateReadSize]byte)
				g.pending = g.arr[:0]
			} else {
				// Doubled, so that a line trickling in an octet a
				// read is copied a few times, not once a read.
				grown := make([]byte, len(g.pending), 2*len(g.pending)+gateReadSize)
				copy(grown, g.pending)
				g.pending = grown
				g.release()
			}
		}
		n, err := src(g.pending[len(g.pending) : len(g.pending)+gateReadSize])
		g.pending = g.pending[:len(g.pending)+n]
		if err != nil {
			if len(g.pending) == 0 {
				return -1, err
			}
			// go-smtp reads the rest as a line, then the error (after
			// which every read fails: the connection hangs up at any
			// read error, a failed reply included).
			g.readErr = err
			return len(g.pending), nil
		}
	}
}

// judge reads line as go-smtp will, unless it is no command.
func (g *cmdGate) judge(line []byte) error {
	if g.notCmd {
		g.notCmd = false
		return nil
	}
	size, ok, isBDAT := parseBDAT(line)
	switch {
	case !isBDAT:
		return nil
	case !ok:
		return errUnparsableBDAT
	}
	g.mode, g.chunkLeft = gateChunk, size
	return nil
}

// parseBDAT reads a command line as go-smtp v0.26.0 does (parseCmd,
// handleBdat): the verb in any case, then one space, then the
// arguments split on spaces and tabs; a size of decimal digits below
// 2^32 and an optional LAST in any case. isBDAT reports a line whose
// verb is BDAT, followed by anything; ok, one go-smtp reads a chunk
// after.
func parseBDAT(line []byte) (size int64, ok, isBDAT bool) {
	if len(line) < 4 || !bytes.EqualFold(line[:4], []byte("BDAT")) {
		return 0, false, false // every other command, without a copy
	}
	s := strings.TrimRight(string(line), "\r\n")
	if len(s) > 4 && s[4] != ' ' && s[4] != '\t' {
		return 0, false, false // another verb (BDATX), go-smtp's 501 5.5.2
	}
	if len(s) == 5 || (len(s) > 4 && s[4] != ' ') {
		return 0, false, true // go-smtp: a mangled command, no size read
	}
	args := strings.Fields(s[min(len(s), 5):])
	if len(args) == 0 || len(args) > 2 || (len(args) == 2 && !strings.EqualFold(args[1], "LAST")) {
		return 0, false, true
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0, false, true
	}
	return int64(n), true, true
}

// bodyEnd runs go-smtp's end-of-data state machine (its dataReader:
// CRLF "." CRLF, where only CRLF ends a line) over b and returns the
// octets up to and including the end line, or len(b).
func (g *cmdGate) bodyEnd(b []byte) int {
	const (
		beginLine = iota
		dot
		dotCR
		cr
		inLine
	)
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch g.dataState {
		case beginLine:
			switch c {
			case '.':
				g.dataState = dot
			case '\r':
				g.dataState = cr
			default:
				g.dataState = inLine
			}
		case dot:
			g.dataState = inLine
			if c == '\r' {
				g.dataState = dotCR
			}
		case dotCR:
			if c == '\n' {
				g.unitDone(gateCommand)
				return i + 1
			}
			g.dataState = inLine
		case cr:
			g.dataState = inLine
			if c == '\n' {
				g.dataState = beginLine
			}
		case inLine:
			j := bytes.IndexByte(b[i:], '\r')
			if j < 0 {
				return len(b)
			}
			i += j
			g.dataState = cr
		}
	}
	return len(b)
}

// take fills p from pending, or from src when pending is empty.
func (g *cmdGate) take(p []byte, src func([]byte) (int, error)) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(g.pending) == 0 {
		return src(p)
	}
	n := copy(p, g.pending)
	g.consume(n)
	return n, nil
}

// unread puts octets passed over back in front of pending.
func (g *cmdGate) unread(b []byte) {
	g.pending = append(append(make([]byte, 0, len(b)+len(g.pending)), b...), g.pending...)
	g.release()
}

func (g *cmdGate) consume(n int) {
	g.pending = g.pending[n:]
	if len(g.pending) == 0 {
		g.pending = nil // a long line's buffer is not kept
		g.release()
	}
}
