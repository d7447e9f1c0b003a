package frontend

import (
	"bytes"
	"math"
	"strconv"
)

// This file follows both halves of an IMAP connection below the library,
// at the level of RFC 9051 section 2.2: lines ended by CRLF, and literals
// whose length ends a line ("{n}", "{n+}", "~{n}"). It exists for the
// commands that are handled here rather than in go-imap's server:
//
//   - ID (RFC 2971), which the library's server does not know. The command
//     goes to the library as a NOOP (same states, same side effects: a
//     poll), and the NOOP's tagged OK comes back as the ID response. The
//     library cannot advertise a capability it does not know either, so
//     " ID" is added to every CAPABILITY list it sends.
//   - GETQUOTAROOT, GETQUOTA and SETQUOTA (RFC 9208), the same way, with
//     the answer the session prepares (imap_quota.go).
//   - STARTTLS (RFC 9051 section 6.2.1), terminated here so that the
//     plaintext of every connection passes through this layer.
//   - SEARCH RETURN (SAVE), whose ESEARCH response the library writes
//     although RFC 5182 section 2.4 says there is none: it is dropped.
//   - IDLE's DONE, which the library takes only in capitals: a "done" in
//     any case after IDLE reaches it as "DONE" (RFC 9051 section 9).
//   - A literal over the library's limit for literals it keeps in memory
//     (imapLiteralLimit), which it would refuse without an answer: the
//     command is refused here, or, once the library has begun on it, the
//     session ends with a BYE (imap_quirks.go).
//   - A non-synchronizing APPEND message over MaxAppendBytes, whose
//     octets the library would read as commands after refusing it: the
//     session ends with a BYE (imap_quirks.go).
//   - Any other non-synchronizing literal (an APPEND message within that
//     limit, or a literal of any other command), held back until the
//     library has taken what comes before it, and read past if it
//     refused the command first (imap_appendhold.go).
//   - An APPEND message followed by more than its command's end
//     (MULTIAPPEND, CATENATE), which the library would store and leave
//     unanswered: its last octet waits until what follows is seen, and
//     the command gets BAD with nothing stored (imap_appendend.go).
//   - A command longer than the library reads (imapCommandMax), whose
//     end it would parse as another command: the session ends with a
//     BYE (imap_quirks.go).
//
// Invariants: at most one command line (imapHoldLine octets) is held;
// literal data passes through by count, never scanned, except the
// literals of ID and QUOTA, which never reach the library (an ID or QUOTA
// command is read whole, at most imapHoldLine octets of arguments kept:
// imap_collect.go), and an APPEND message's last octet, held until the
// octets after it are judged; a line that is too long to hold passes
// through unchanged, but for an end that may start a literal's
// announcement, held until the line goes on (passOn), and for what of a
// command is past imapCommandMax, never passed.

// imapHoldLine bounds a held line, in either direction. A command line
// longer than this is never ID or STARTTLS; a response line longer than
// this is never a CAPABILITY list or a tagged NOOP reply.
const imapHoldLine = 8 << 10

// imapServerID is our half of the ID exchange (RFC 2971 section 3.2). It
// names the software and nothing more: no version, which would help an
// attacker more than a client.
const imapServerID = `("name" "PowerMail" "vendor" "PowerMail")`

// imapInput follows the client's stream. next hands back each command line
// whole; everything else (literal data, continuation lines after a
// literal, overlong lines) passes straight to out.
type imapInput struct {
	lit  int64  // literal octets still to pass through
	cont bool   // the current line continues a command after a literal
	pass bool   // the current line is passing through unheld
	line []byte // the held part of the current command line
	// carry: the end of a line passing through unheld that may begin a
	// literal's announcement, kept back until the line goes on (passOn).
	carry      []byte
	carryZeros int    // zeros taken out of carry after its "{" (passOn)
	tail       []byte // the last octets of a line passing through
	tag        []byte // the current command's tag
	name       []byte // and its name, upper-cased; empty for a line that is no command
	// tooBig: the line just ended announces a literal the library would
	// refuse without answering (imapLiteralLimit); next returns there.
	tooBig bool
	// appendMax is the largest message APPEND takes (MaxAppendBytes; 0:
	// not checked here). overAppend: the line just ended announces a
	// non-synchronizing APPEND message over it, which the library would
	// refuse and then read as commands; next returns there too.
	appendMax  int64
	overAppend bool
	// loggedIn: the session had logged in when the command being read
	// past was refused. Only then would the library have read an APPEND
	// message within appendMax whole; before login it refuses every one
	// unread (AppendLimit 0), so its message counts toward
	// imapCollectDrop like any other literal.
	loggedIn bool
	// holdLit: the line just ended announces a non-synchronizing
	// literal that the library may refuse before it reads it (an APPEND
	// message within appendMax, or any other literal of a command), which
	// waits until the library has taken what comes before it
	// (imap_appendhold.go); next returns there. skip octets, then the rest
	// of their line (skipLine), are dropped: the literal of a command
	// refused before it was read, and any further non-synchronizing
	// literal that line announces (readPast). skipped counts what was
	// dropped, APPEND messages within appendMax aside; past
	// imapCollectDrop, skipOver ends the session.
	holdLit  bool
	skip     int64
	skipLine bool
	skipTail []byte
	skipped  int64
	skipOver bool
	// await: the literal just announced is synchronizing and none of it
	// has arrived: the client waits for "+", and a tagged response
	// instead refuses it (RFC 9051 §7.5), after which the client's next
	// octets are a command (refuseLiteral). awaitN counts announcements.
	await  bool
	awaitN int
	// msg: the literal in progress is an APPEND message, whose last
	// octet waits until what follows it shows whether the command ends
	// there (imap_appendend.go); msgUTF8: in the UTF8 form, so ")"
	// comes first. msgEnd: that is being judged, from endBuf, with the
	// last octet held (last; hasLast is false for a message of length
	// 0). more: the last message judged is followed by more than its
	// command's end.
	msg, msgUTF8, msgEnd bool
	last                 byte
	hasLast              bool
	endBuf               []byte
	more                 bool
	// cmdOctets counts the current command's octets but its literals'
	// data, as go-imap's server counts them; past imapCommandMax,
	// lineOver ends the session.
	cmdOctets int64
	lineOver  bool
}

// imapCommandMax is the most of a command, literal data aside, that the
// library reads (its maxCommandSize, 50 KiB). It does not refuse more:
// it answers the command and parses the rest as a new command, so the
// end of a long line (a quoted string's text) ran as commands. The wire
// layer passes at most this much of a command and ends the session
// there (imapLineTooLongBye).
const imapCommandMax = 50 << 10

// refuseLiteral forgets the awaited literal and the rest of its command:
// the server refused it.
func (in *imapInput) refuseLiteral() {
	in.lit, in.cont, in.await, in.tooBig, in.overAppend = 0, false, false, false, false
	in.holdLit, in.msg, in.msgEnd = false, false, false
}

// atCommandStart reports whether the octets so far end a command: no
// line, literal or continuation is under way.
func (in *imapInput) atCommandStart() bool {
	return in.lit == 0 && !in.cont && !in.pass && len(in.line) == 0 && in.skip == 0 && !in.skipLine
}

// readPast starts dropping the rest of a command the library refused
// before it read the literal of n octets that the command's last line
// announced: the literal, the rest of its line, and so on for each
// non-synchronizing literal a dropped line announces. A synchronizing
// one ends it: the client has the refusal, and does not send it (RFC
// 9051 §7.5).
func (in *imapInput) readPast(n int64) {
	in.skipLine, in.skipTail, in.skipped = true, in.skipTail[:0], 0
	in.skipLiteral(n)
}

// skipLiteral drops the next n octets. An APPEND's literal within
// appendMax, once logged in, is a message, which the library would have
// read whole had it taken the command; any other counts toward
// imapCollectDrop. Before login only LITERAL- is offered, which bounds a
// non-synchronizing literal to 4096 octets (RFC 7888 §4), and no APPEND
// is taken: a client nobody knows is not read past further.
func (in *imapInput) skipLiteral(n int64) {
	if string(in.name) == "APPEND" && in.loggedIn && (in.appendMax == 0 || n <= in.appendMax) {
		in.skip = n
		return
	}
	if n > imapCollectDrop-in.skipped {
		in.skipOver = true
		return
	}
	in.skipped += n
	in.skip = n
}

// skipOctets drops what skip and skipLine say from the start of b.
func (in *imapInput) skipOctets(b []byte) []byte {
	if in.skip > 0 {
		k := min(in.skip, int64(len(b)))
		in.skip -= k
		return b[k:]
	}
	seg := b
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		seg = b[:i+1]
	}
	in.skipped += int64(len(seg))
	in.skipTail = appendTail(in.skipTail, seg)
	if in.skipped > imapCollectDrop {
		in.skipOver = true
		return nil
	}
	if seg[len(seg)-1] != '\n' {
		return nil
	}
	in.skipLine = false
	if n := literalAtEnd(in.skipTail); n >= 0 && nonSyncAtEnd(in.skipTail) {
		in.skipLine, in.skipTail = true, in.skipTail[:0]
		in.skipLiteral(n)
	}
	return b[len(seg):]
}

// nonSyncAtEnd reports whether the literal at the end of line is
// non-synchronizing ("{n+}", RFC 7888).
func nonSyncAtEnd(line []byte) bool {
	return bytes.HasSuffix(imapTrimEOL(line), []byte("+}"))
}

// next consumes b up to the end of the next command line, or all of it.
// Octets that are not part of a held command line are appended to out. A
// completed command line (with its CRLF) is returned in line; the caller
// appends it, or a replacement, to out itself.
func (in *imapInput) next(b, out []byte) (rest, outNew, line []byte) {
	if in.lineOver {
		return nil, out, nil // nothing more of the session passes
	}
	for len(b) > 0 {
		if in.skip > 0 || in.skipLine {
			if b = in.skipOctets(b); in.skipOver {
				return nil, out, nil // the caller ends the session
			}
			continue
		}
		if in.msgEnd {
			if b, out = in.judgeEnd(b, out); in.lineOver {
				return nil, out, nil
			}
			continue
		}
		seg, isLit, complete := nextSegment(b, &in.lit)
		b = b[len(seg):]
		if isLit {
			if in.msg && in.lit == 0 {
				seg = in.holdLast(seg)
			}
			out = append(out, seg...)
			in.await = false
			continue
		}
		if !in.cont && !in.pass && len(in.line)+len(seg) <= imapHoldLine {
			in.line = append(in.line, seg...)
			if !complete {
				continue
			}
			line, in.line = in.line, in.line[:0] // valid until the next call
			in.cmdOctets = int64(len(line))
			in.noteTag(line)
			in.endLine(line)
			return b, out, line
		}
		if !in.pass { // a continuation line, or one too long to hold
			if !in.cont {
				in.noteTag(append(in.line, seg[:min(len(seg), 64)]...))
				in.cmdOctets = int64(len(in.line))
			}
			in.pass = true
			in.carry, in.carryZeros = append(in.carry[:0], in.line...), 0
			in.tail = appendTail(in.tail[:0], in.line)
			in.line = in.line[:0]
		}
		if left := imapCommandMax - in.cmdOctets; int64(len(seg)) > left {
			// As much as the library reads, however the line came.
			out = in.passOn(out, seg[:left], false)
			in.lineOver = true
			return nil, out, nil // the caller ends the session
		}
		in.cmdOctets += int64(len(seg))
		out = in.passOn(out, seg, complete)
		in.tail = appendTail(in.tail, seg)
		if complete {
			in.endLine(in.tail)
			in.pass = false
			in.tail = in.tail[:0]
			if in.tooBig || in.overAppend || in.holdLit {
				return b, out, nil // the caller acts on it
			}
		}
	}
	return b, out, nil
}

// passOn appends seg, part of a line passing through unheld, to out,
// but for an end that may be the start of a literal's announcement
// ("{12", "{12+"), kept in carry until the line goes on: the
// announcement reaches the library whole, in one read, so that the "+"
// of "{n+}" can still be taken out of it (imap_appendhold.go).
//
// A length's leading zeros are kept as a count (carryZeros) while the
// announcement may go on, so that any number of them fits in the window,
// and go out as they came.
func (in *imapInput) passOn(out, seg []byte, complete bool) []byte {
	in.carry = append(in.carry, seg...)
	k := len(in.carry)
	if !complete {
		k = imapAnnouncementStart(in.carry)
	}
	if k > 0 && in.carryZeros > 0 { // carry[0] is the "{" they followed
		out = append(out, '{')
		out = append(out, bytes.Repeat([]byte("0"), in.carryZeros)...)
		out = append(out, in.carry[1:k]...)
		in.carryZeros = 0
	} else {
		out = append(out, in.carry[:k]...)
	}
	in.carry = in.carry[:copy(in.carry, in.carry[k:])]
	var z int
	in.carry, z = dropLengthZeros(in.carry)
	in.carryZeros += z
	return out
}

// imapAnnouncementStart returns where a literal's announcement may begin
// in the last 32 octets of b (as much as appendTail keeps to find one),
// not counting its length's leading zeros, or len(b): a "{" followed by
// nothing but what may come before the line's end of "{digits[+]}".
// The zeros are not counted so that the answer does not depend on how
// the line came: passOn drops them from what it keeps between reads.
func imapAnnouncementStart(b []byte) int {
	open := bytes.LastIndexByte(b, '{')
	if open < 0 || len(b)-open-lengthZeros(b[open+1:]) > 32 {
		return len(b)
	}
	rest := b[open+1:]
	rest = bytes.TrimLeft(rest, "0123456789")
	rest = bytes.TrimPrefix(rest, []byte("+"))
	rest = bytes.TrimPrefix(rest, []byte("}"))
	rest = bytes.TrimPrefix(rest, []byte(" "))
	rest = bytes.TrimPrefix(rest, []byte("\r"))
	if len(rest) > 0 {
		return len(b)
	}
	return open
}

// nextSegment returns the start of b up to the end of the literal in
// progress (isLit; *lit is counted down) or else up to the end of the line
// (complete says whether that end is in b).
func nextSegment(b []byte, lit *int64) (seg []byte, isLit, complete bool) {
	if *lit > 0 {
		k := int(min(*lit, int64(len(b))))
		*lit -= int64(k)
		return b[:k], true, false
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1], false, true
	}
	return b, false, false
}

// endLine starts the literal that line announces, if any: the next line
// is then the same command's continuation.
func (in *imapInput) endLine(line []byte) {
	command := in.cont || len(in.name) > 0 // a command's line, not AUTHENTICATE's or DONE
	n := literalAtEnd(line)
	buffered := n >= 0 && in.bufferedLiteral(line, !in.cont, !in.pass)
	in.tooBig = n > imapLiteralLimit && buffered
	in.cont = n >= 0
	if n > 0 {
		in.lit = n
	}
	in.await = n >= 0 && !nonSyncAtEnd(line)
	if in.await {
		in.awaitN++
	}
	nonSync := n >= 0 && !in.await
	message := nonSync && !buffered && string(in.name) == "APPEND"
	in.overAppend = message && in.appendMax > 0 && n > in.appendMax
	in.holdLit = nonSync && command && !in.overAppend && !in.tooBig
	if n >= 0 && !buffered && string(in.name) == "APPEND" && !in.overAppend {
		in.startMessage(line, n)
	}
}

// noteTag remembers the tag of the command that line starts.
func (in *imapInput) noteTag(line []byte) {
	t, _, _ := bytes.Cut(line, []byte(" "))
	in.tag = append(in.tag[:0], t...)
	_, name, _, ok := imapCommand(line)
	in.name = in.name[:0]
	if ok {
		in.name = append(in.name, name...)
	}
}

// appendTail keeps the last 32 octets of a line: enough for "{n+}\r\n",
// once the leading zeros of a length are dropped (dropLengthZeros).
func appendTail(tail, seg []byte) []byte {
	tail, _ = dropLengthZeros(append(tail, seg...))
	if len(tail) > 32 {
		tail = append(tail[:0], tail[len(tail)-32:]...)
	}
	return tail
}

// dropLengthZeros drops the zeros that lead the digits after the last
// "{" in b, as long as a digit follows them, and reports how many. A
// literal's length may have any number of them (RFC 9051 §9: number =
// 1*DIGIT); without them it fits in the octets kept to find it.
func dropLengthZeros(b []byte) ([]byte, int) {
	open := bytes.LastIndexByte(b, '{')
	if open < 0 {
		return b, 0
	}
	digits := b[open+1:]
	z := lengthZeros(digits)
	if z == 0 {
		return b, 0
	}
	return append(b[:open+1], digits[z:]...), z
}

// lengthZeros counts the zeros that lead digits and are followed by a
// digit: those a literal's length may drop without changing it.
func lengthZeros(digits []byte) int {
	z := 0
	for z+1 < len(digits) && digits[z] == '0' && digits[z+1] >= '0' && digits[z+1] <= '9' {
		z++
	}
	return z
}

// imapTrimEOL strips the end of a client's line as go-imap's parser
// reads it (its Decoder.CRLF): LF, the CR before it, and one space
// before those. RFC 9051 §2.2 asks for CRLF, but the library takes a
// lone LF and a trailing space too, so this layer must: a literal it did
// not see announced would have its octets scanned as commands here,
// while the library reads them as the literal.
func imapTrimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return bytes.TrimSuffix(line, []byte(" "))
}

// literalAtEnd returns the length of the literal announced at the end of
// line ("{12}\r\n", "{12+}\r\n", "~{12}\r\n"), or -1 if there is none.
func literalAtEnd(line []byte) int64 {
	line = imapTrimEOL(line)
	if len(line) < 3 || line[len(line)-1] != '}' {
		return -1
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("+"))
	open := bytes.LastIndexByte(line, '{')
	if open < 0 {
		return -1
	}
	digits := line[open+1:]
	if len(digits) == 0 || bytes.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' }) {
		return -1 // RFC 9051 §9: number is digits only, no sign
	}
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		// Digits past int64 (ErrRange): still a literal, larger than
		// anything taken. Read as text, its octets would reach the
		// library as commands, which refuses the length and reads them
		// as such too.
		return math.MaxInt64
	}
	return n
}

// imapCommand splits a command line into its tag and upper-cased command
// name, and the rest of the line without CRLF. ok is false for lines that
// are not "tag SP name ...": a continuation of AUTHENTICATE, IDLE's DONE.
func imapCommand(line []byte) (tag, name string, args []byte, ok bool) {
	line = imapTrimEOL(line)
	t, r, found := bytes.Cut(line, []byte(" "))
	if !found || len(t) == 0 || t[0] == '*' || t[0] == '+' {
		return "", "", nil, false
	}
	n, args, _ := bytes.Cut(r, []byte(" "))
	return string(t), string(bytes.ToUpper(n)), args, true
}

// imapIsDone reports whether line is IDLE's DONE (RFC 2177 section 3),
// in any case (RFC 9051 section 9: the syntax is case-insensitive).
func imapIsDone(line []byte) bool {
	return bytes.EqualFold(bytes.TrimRight(line, "\r\n"), []byte("DONE"))
}

// validIDArgs checks the argument of ID (RFC 2971 section 4): NIL, or a
// parenthesised list of pairs, each a quoted field name and a value that
// is a quoted string or NIL (an nstring: clients send NIL for a field
// they have no value for). Quoted strings are checked for their quotes;
// the values themselves are only logged.
func validIDArgs(args []byte) bool {
	if bytes.EqualFold(args, []byte("NIL")) {
		return true
	}
	if len(args) < 2 || args[0] != '(' || args[len(args)-1] != ')' {
		return false
	}
	rest := bytes.TrimLeft(args[1:len(args)-1], " ")
	n := 0
	for len(rest) > 0 {
		quoted, after, ok := idToken(rest)
		if !ok || (!quoted && n%2 == 0) { // a field name is never NIL
			return false
		}
		rest = bytes.TrimLeft(after, " ")
		n++
	}
	return n%2 == 0 && n <= 60 // at most 30 pairs
}

// idToken reads one ID list item from the start of b: a quoted string
// (quoted is true) or NIL, and returns what follows it.
func idToken(b []byte) (quoted bool, rest []byte, ok bool) {
	if len(b) >= 3 && bytes.EqualFold(b[:3], []byte("NIL")) && (len(b) == 3 || b[3] == ' ') {
		return false, b[3:], true
	}
	if b[0] != '"' {
		return false, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return true, b[i+1:], true
		}
	}
	return false, nil, false
}

// imapLocalReply is a command answered here (ID, QUOTA) that went to the
// library as a NOOP, waiting for the NOOP's tagged reply: lines are the
// untagged responses (each ending in CRLF), status the tagged status
// after the tag ("OK ID completed").
type imapLocalReply struct {
	tag    string
	lines  string
	status string
}

// imapIDReply answers ID: our identity, or BAD for malformed arguments.
func imapIDReply(tag string, valid bool) imapLocalReply {
	if !valid {
		return imapLocalReply{tag: tag, status: "BAD Invalid ID arguments"}
	}
	return imapLocalReply{tag: tag, lines: "* ID " + imapServerID + "\r\n", status: "OK ID completed"}
}

// imapAddedCaps is what every capability list the library sends gets.
const imapAddedCaps = " ID" + imapQuotaCaps

// rewriteResponse returns what the client gets instead of one complete
// response line, or nil to send it as is. pending is the queue of
// commands answered here that are in flight, oldest first; a reply to the
// oldest is taken off.
func rewriteResponse(line []byte, pending *[]imapLocalReply) []byte {
	if len(*pending) > 0 {
		p := (*pending)[0]
		if rest, ok := bytes.CutPrefix(line, []byte(p.tag+" ")); ok {
			*pending = (*pending)[1:]
			if !bytes.HasPrefix(rest, []byte("OK")) {
				return nil // NO or BAD from the poll: pass it on
			}
			return []byte(p.lines + p.tag + " " + p.status + "\r\n")
		}
	}
	if r := imapBadCharsetList(line); r != nil {
		return r
	}
	at := capabilityListEnd(line)
	if at < 0 || bytes.Contains(line[:at], []byte(" ID ")) || bytes.HasSuffix(line[:at], []byte(" ID")) {
		return nil
	}
	out := make([]byte, 0, len(line)+len(imapAddedCaps))
	out = append(out, line[:at]...)
	out = append(out, imapAddedCaps...)
	return append(out, line[at:]...)
}

// imapSearchCharsets is what SEARCH CHARSET takes. The library's SEARCH
// accepts these two (the keys reach the session as UTF-8 strings, and
// US-ASCII is a subset) and refuses any other with a bare BADCHARSET,
// to which imapBadCharsetList adds the list of supported charsets that
// RFC 9051 section 7.1 allows after the code, so that a client can
// retry with one of them.
const imapSearchCharsets = "(US-ASCII UTF-8)"

// imapBadCharsetList returns line with imapSearchCharsets in its
// BADCHARSET code, or nil for any other line. Only the library's refusal
// of SEARCH CHARSET carries that code.
func imapBadCharsetList(line []byte) []byte {
	const code = "NO [BADCHARSET]"
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(rest, []byte(code)) {
		return nil
	}
	at := len(line) - len(rest) + len(code) - 1 // the "]"
	out := make([]byte, 0, len(line)+1+len(imapSearchCharsets))
	out = append(out, line[:at]...)
	out = append(out, ' ')
	out = append(out, imapSearchCharsets...)
	return append(out, line[at:]...)
}

// capabilityListEnd finds where a capability list ends in a response line:
// "* CAPABILITY ...", or a status response with a "[CAPABILITY ...]" code
// (the greeting, and the OK to LOGIN and AUTHENTICATE). It returns -1 for
// any other line.
func capabilityListEnd(line []byte) int {
	if bytes.HasPrefix(line, []byte("* CAPABILITY ")) && bytes.HasSuffix(line, []byte("\r\n")) {
		return len(line) - 2
	}
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || !bytes.HasPrefix(rest, []byte("OK [CAPABILITY ")) {
		return -1
	}
	end := bytes.IndexByte(rest, ']')
	if end < 0 {
		return -1
	}
	return len(line) - len(rest) + end
}

// imapSearchSaveOnly reports whether a command line (name and arguments,
// from imapCommand) is SEARCH or UID SEARCH with RETURN (SAVE) and no
// other return option. Such a search returns no ESEARCH (RFC 5182
// section 2.4), but the library cannot tell it from RETURN (SAVE ALL):
// it takes ALL as asked whenever no MIN, MAX, ALL or COUNT is, and sends
// the ESEARCH, which imapESearchTag lets this layer drop.
func imapSearchSaveOnly(name string, args []byte) bool {
	if name == "UID" {
		sub, rest, _ := bytes.Cut(args, []byte(" "))
		if !bytes.EqualFold(sub, []byte("SEARCH")) {
			return false
		}
		args = rest
	} else if name != "SEARCH" {
		return false
	}
	const ret = "RETURN ("
	if len(args) < len(ret) || !bytes.EqualFold(args[:len(ret)], []byte(ret)) {
		return false
	}
	opts, _, found := bytes.Cut(args[len(ret):], []byte(")"))
	fields := bytes.Fields(opts)
	if !found || len(fields) == 0 {
		return false
	}
	for _, f := range fields {
		if !bytes.EqualFold(f, []byte("SAVE")) {
			return false
		}
	}
	return true
}

// imapESearchTag returns the tag an ESEARCH response line names
// (`* ESEARCH (TAG "t") ...`, RFC 4731 section 3.1); ok is false for any
// other line. A tag has no quote or backslash (RFC 9051 section 9), so
// the library always writes it as a plain quoted string.
func imapESearchTag(line []byte) (tag string, ok bool) {
	rest, ok := bytes.CutPrefix(line, []byte(`* ESEARCH (TAG "`))
	if !ok {
		return "", false
	}
	t, _, ok := bytes.Cut(rest, []byte(`"`))
	return string(t), ok
}
