package frontend

import "bytes"

// An APPEND's message literal ends the command: only CRLF may follow it
// (RFC 9051 §9: append = "APPEND" SP mailbox [SP flag-list]
// [SP date-time] SP literal), after the ")" of the UTF8 form (RFC 6855
// §4). A client that sends more there (a second message: MULTIAPPEND,
// RFC 3502; CATENATE's parts, RFC 4469; neither is advertised) met
// go-imap's server storing the first message, then finding no CRLF and
// returning without a tagged response, and reading what followed as
// commands: a client waiting for "+" for its second literal waited until
// the autologout.
//
// So the wire layer holds back the message's last octet until it has
// seen what follows it, up to where that shows whether the command ends
// (imapInput.judgeEnd). If it does, all passes on as it came. If not,
// imapConn.appendMore is set before the last octet goes to the library,
// which makes the literal fail as the store reads its end (literalBody):
// nothing is stored, and the session's Append answers BAD. The library
// then gets the command's end ("\r\n", or ")\r\n") in place of what the
// client sent, so that it sends that BAD at once, and what the client
// sent is read past: the rest of the line, and every non-synchronizing
// literal it announces (imapInput.readPast). A synchronizing one is
// never asked for: the client has its BAD instead of "+" (RFC 9051 §7.5).
// A message of length 0 has no last octet to hold: the library hands it
// to the session before it reads on, so the session's Append first has
// the wire layer read on until the end is judged (judgeEmptyMessage).

// errIMAPAppendNotAlone answers an APPEND whose message is followed by
// more than its command's end (RFC 9051 §7.1: BAD, the arguments are not
// valid; nothing was appended).
var errIMAPAppendNotAlone = imapBad("One message per APPEND: MULTIAPPEND and CATENATE are not supported")

// imapAppendEnd judges the octets after an APPEND message so far: 1 if
// they end the command, -1 if they cannot, 0 if more must be seen. The
// library takes ")" first in the UTF8 form, then one space, a CR and
// the LF (its Decoder.CRLF).
func imapAppendEnd(b []byte, utf8 bool) int {
	if utf8 {
		if b[0] != ')' {
			return -1
		}
		if b = b[1:]; len(b) == 0 {
			return 0
		}
	}
	b = bytes.TrimPrefix(b, []byte(" "))
	b = bytes.TrimPrefix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return 0
	case string(b) == "\n":
		return 1
	}
	return -1
}

// startMessage notes that the literal the line just ended announces is
// an APPEND message: its last octet waits for judgeEnd. A message of
// length 0 is judged at once.
func (in *imapInput) startMessage(line []byte, n int64) {
	in.msg, in.more = true, false
	before := imapTrimEOL(line)
	before = before[:bytes.LastIndexByte(before, '{')]
	in.msgUTF8 = bytes.HasSuffix(before, []byte("(~"))
	if n == 0 {
		in.msg, in.msgEnd, in.hasLast = false, true, false
	}
}

// holdLast keeps the last octet of an APPEND message out of seg, the
// segment that ends it.
func (in *imapInput) holdLast(seg []byte) []byte {
	in.msg, in.msgEnd = false, true
	in.last, in.hasLast = seg[len(seg)-1], true
	in.endBuf = in.endBuf[:0]
	return seg[:len(seg)-1]
}

// judgeEnd reads the octets after an APPEND message from b until they
// show whether the command ends there, and passes the held last octet
// on with them, or with the command's end in place of what the client
// sent (then read past).
func (in *imapInput) judgeEnd(b, out []byte) (rest, outNew []byte) {
	for len(b) > 0 && in.msgEnd {
		in.endBuf = append(in.endBuf, b[0])
		b = b[1:]
		verdict := imapAppendEnd(in.endBuf, in.msgUTF8)
		if verdict == 0 {
			continue
		}
		in.msgEnd = false
		if in.cmdOctets += int64(len(in.endBuf)); in.cmdOctets > imapCommandMax {
			// The command's end is past what the library reads: the
			// last octet is never passed, so nothing is stored.
			in.lineOver = true
			return nil, out
		}
		if in.hasLast {
			out = append(out, in.last)
		}
		if verdict > 0 {
			out = append(out, in.endBuf...)
			in.endLine(in.endBuf)
			continue
		}
		in.more = true
		if in.msgUTF8 {
			out = append(out, ')')
		}
		out = append(out, "\r\n"...)
		in.lit, in.cont, in.await, in.holdLit = 0, false, false, false
		in.skipLine, in.skipTail, in.skipped = true, append(in.skipTail[:0], in.endBuf...), int64(len(in.endBuf))
		if in.endBuf[len(in.endBuf)-1] == '\n' {
			in.skipLine = false // a malformed end: nothing more on the line
		}
	}
	return b, out
}

// imapHeldOctets is how many octets at a literal's end do not go
// straight to the library: an APPEND message's last one.
func imapHeldOctets(msg bool) int64 {
	if msg {
		return 1
	}
	return 0
}

// errIMAPAppendUnended answers an APPEND of an empty message whose end
// never came: the client hung up, or the command ran past what the
// library reads (imapCommandMax). Nothing is stored, as for a message
// cut off part way (literalBody); the session is ending.
var errIMAPAppendUnended = imapBad("The APPEND did not end: nothing was stored")

// judgeEmptyMessage reads the client's octets on, for the session's
// Append of a message of length 0, until what follows the message shows
// whether the command ends there. It runs where Read would: on the
// library's reading goroutine, inside its APPEND, which has read nothing
// past the literal's announcement. What it reads waits in rout for the
// library, in order. It reports false if the end was never judged.
func (c *imapConn) judgeEmptyMessage() bool {
	for c.in.msgEnd && c.rerr == nil {
		c.wmu.Lock()
		err := c.flushLocked() // a synchronizing literal's "+" first
		c.wmu.Unlock()
		if err != nil {
			return false
		}
		if c.hold != "" {
			c.releaseHold()
			continue
		}
		n, err := c.readRaw(c.rbuf)
		c.scan(c.rbuf[:n])
		if c.rerr == nil {
			c.rerr = err
		}
	}
	return !c.in.msgEnd && !c.in.lineOver
}
