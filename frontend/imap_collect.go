package frontend

import (
	"bytes"
	"errors"
	"slices"
)

// A command answered here (ID, QUOTA) may carry an argument as a literal
// (RFC 9051 §4.3: "{n}" or "{n+}" ends a line, n octets follow, then the
// rest of the command): a client sends a folder name with a quote or a
// backslash that way, or any string it chooses to. The library does not
// know these commands, so such a command is read here whole: each literal
// becomes a quoted string in its arguments, and the command is then
// answered as if it had come on one line. For a synchronizing literal the
// client waits for "+", which Read sends once the library has answered
// everything before the command (imapConn.sendContinuation).
//
// A collected command is bounded by imapHoldLine octets of arguments. A
// larger synchronizing literal is refused before the client sends it; a
// larger non-synchronizing one, or a longer line, is read and dropped,
// and the command gets BAD. Past imapCollectDrop octets the connection is
// closed, as the library closes one whose line is too long.

// imapCollectDrop bounds the octets a refused command may still send.
const imapCollectDrop = 64 << 10

// errIMAPCommandTooLong closes a connection whose command runs past
// imapCollectDrop.
var errIMAPCommandTooLong = errors.New("imap: command too long")

// imapCollect is an ID or QUOTA command being read across its literals.
type imapCollect struct {
	tag, name string
	args      []byte // the arguments so far, literals as quoted strings
	line      []byte // the start of a line still to end
	lit       int64  // octets of the current literal still to come
	inLit     bool   // reading a literal (lit may be 0: "{0}")
	sync      bool   // the current literal waits for "+"
	plusSent  bool   // "+" went out, or the literal began without it
	ended     bool   // the command is complete
	dropped   int    // octets read and dropped after a refusal
	refused   string // the tagged status instead of the answer, if any
}

// newIMAPCollect starts collecting the command whose first line (args,
// without the tag and name) ends by announcing a literal.
func newIMAPCollect(tag, name string, args []byte) *imapCollect {
	k := &imapCollect{tag: tag, name: name}
	k.endLine(bytes.TrimSuffix(args, []byte("\r\n")))
	return k
}

// newIMAPRefused starts reading past a command that is refused with
// status whatever follows: its synchronizing literal is refused before
// the client sends it, a non-synchronizing one is read and dropped.
func newIMAPRefused(tag, name string, args []byte, status string) *imapCollect {
	k := &imapCollect{tag: tag, name: name, refused: status}
	k.endLine(bytes.TrimSuffix(args, []byte("\r\n")))
	return k
}

// wantsContinuation reports whether the client waits for "+".
func (k *imapCollect) wantsContinuation() bool {
	return k.inLit && k.sync && !k.plusSent
}

// endLine takes the end of one line of the command: either the command
// is complete, or the line announces the next literal.
func (k *imapCollect) endLine(line []byte) {
	line = imapTrimEOL(line) // "{n} ": the library's reading (imapTrimEOL)
	n := literalAtEnd(line)
	if n < 0 {
		k.add(line)
		k.ended = true
		return
	}
	open := bytes.LastIndexByte(line, '{')
	k.add(line[:open])
	k.sync = !bytes.HasSuffix(line, []byte("+}"))
	k.inLit, k.plusSent, k.lit = true, false, n
	switch {
	case open > 0 && line[open-1] == '~':
		k.refuse("BAD [CLIENTBUG] A binary literal is not allowed here")
	case n > imapHoldLine-2-int64(len(k.args)):
		// Compared this way round: n may be as large as an int64
		// goes, and len(args)+n+2 would wrap to a negative number.
		k.refuse("BAD [CLIENTBUG] Argument too long")
	}
	if k.refused != "" && k.sync {
		// Refused before the client sends it (RFC 9051 §7.5): the
		// command ends here.
		k.inLit, k.lit, k.ended = false, 0, true
		return
	}
	k.add([]byte{'"'})
}

// add appends to the arguments unless the command is refused; past
// imapHoldLine it is.
func (k *imapCollect) add(b []byte) {
	if k.refused == "" && len(k.args)+len(b) > imapHoldLine {
		k.refuse("BAD [CLIENTBUG] Command too long")
	}
	if k.refused != "" {
		k.dropped += len(b)
		return
	}
	k.args = append(k.args, b...)
}

func (k *imapCollect) refuse(status string) {
	if k.refused == "" {
		k.refused, k.args = status, nil
	}
}

// literal takes octets of the current literal as the contents of a quoted
// string (RFC 9051 §4.3: quoted-specials escaped). CR, LF and NUL have no
// quoted form, and an argument of ID or QUOTA has no use for them.
func (k *imapCollect) literal(b []byte) {
	if bytes.ContainsAny(b, "\r\n\x00") {
		k.refuse("BAD [CLIENTBUG] Invalid character in a literal")
	}
	for len(b) > 0 && k.refused == "" {
		i := bytes.IndexAny(b, `"\`)
		if i < 0 {
			k.add(b)
			return
		}
		k.add(b[:i])
		k.add([]byte{'\\', b[i]})
		b = b[i+1:]
	}
	k.dropped += len(b)
}

// feed consumes the client's octets b until the command ends or b runs
// out, and returns what follows the command. A command past
// imapCollectDrop gets errIMAPCommandTooLong.
func (k *imapCollect) feed(b []byte) ([]byte, error) {
	for len(b) > 0 && !k.ended {
		if k.inLit && k.lit == 0 {
			k.inLit = false
			k.add([]byte{'"'})
			continue
		}
		seg, isLit, complete := nextSegment(b, &k.lit)
		b = b[len(seg):]
		switch {
		case isLit:
			k.plusSent = true // a client that sends on regardless needs no "+"
			k.literal(seg)
		case len(k.line)+len(seg) > imapHoldLine+2:
			// Dropped, but its end is kept: it may announce a literal.
			k.refuse("BAD [CLIENTBUG] Command too long")
			k.dropped += len(seg)
			k.line = appendTail(k.line, seg)
		default:
			k.line = append(k.line, seg...)
		}
		if k.dropped > imapCollectDrop {
			return b, errIMAPCommandTooLong
		}
		if !isLit && complete {
			k.endLine(bytes.TrimSuffix(bytes.TrimSuffix(k.line, []byte("\n")), []byte("\r")))
			k.line = k.line[:0]
		}
	}
	return b, nil
}

// imapContinuation asks the client for a literal's octets.
const imapContinuation = "+ Ready for literal data\r\n"

// sendContinuation sends "+" for the literal of the command being
// collected (RFC 9051 §7.5). Read calls it only when the library has
// answered every command before, so no response of the library's is half
// written; one that was would still be kept whole.
func (c *imapConn) sendContinuation() error {
	c.collect.plusSent = true
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil || c.byeQueued {
		return c.werr
	}
	at := len(c.wbuf)
	if c.held >= 0 {
		at = c.held
		c.held += len(imapContinuation)
	}
	c.wbuf = slices.Insert(c.wbuf, at, []byte(imapContinuation)...)
	return c.flushLocked()
}
