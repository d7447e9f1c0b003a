package frontend

import "bytes"

// An APPEND whose message comes as a non-synchronizing literal
// ("{n+}", RFC 7888) sends the message right behind the command line.
// go-imap's server reads the mailbox name, flags and date-time first,
// and a command it refuses there (a name that is not modified UTF-7, a
// malformed date-time) is answered and discarded up to the end of its
// line: the message that follows was then read as commands. The message
// is mail from anyone, so a header field such as "X-A: DELETE Archive"
// ran as a command, tagged "X-A:".
//
// So the wire layer hands the library such an APPEND with the literal
// made synchronizing ("{n}") and holds the message back. The library
// answers "+" once it has taken the arguments and the length; that "+"
// is not the client's (it sent the message already) and is dropped, and
// the message goes on to the library. A tagged response instead means
// the command was refused before its message: the message's n octets and
// the rest of their line are read and dropped, and the client's next
// octets are a command again (RFC 9051 §7.5 for a refused literal).

// imapHoldOutcome is what the library answered to a held APPEND.
type imapHoldOutcome int

const (
	holdPending  imapHoldOutcome = iota // neither: see releaseHold
	holdReleased                        // "+": the library reads the message
	holdRefused                         // the command's tagged response came first
)

// holdAppend makes the non-synchronizing literal that the line at the
// end of rout announces a synchronizing one for the library, and holds
// rest, the octets after that line, until the library answers (Read). It
// reports false, and holds nothing, if the "+" of "{n+}" was already
// read by the library (a line split across reads there).
func (c *imapConn) holdAppend(rest []byte) bool {
	c.in.holdAppend = false
	end := imapTrimEOL(c.rout[c.roff:])
	if !bytes.HasSuffix(end, []byte("+}")) {
		return false
	}
	at := c.roff + len(end) - 2
	c.rout = append(c.rout[:at], c.rout[at+1:]...)
	c.hold, c.later = string(c.in.tag), bytes.Clone(rest)
	c.wmu.Lock()
	c.holdTag, c.holdOutcome = c.hold, holdPending
	c.wmu.Unlock()
	return true
}

// releaseHold acts on the library's answer to the held APPEND, once it
// reads again: the message goes to it, or is dropped. A library that
// reads on without either answer did not see a literal there (the
// "{n+}" was inside an unterminated quoted string, which it reads across
// the line's end): the octets go to it as they came, but for the "+"
// taken out of that malformed line.
func (c *imapConn) releaseHold() {
	c.wmu.Lock()
	outcome := c.holdOutcome
	c.holdTag, c.holdOutcome = "", holdPending
	c.wmu.Unlock()
	later := c.later
	c.hold, c.later = "", nil
	if outcome == holdRefused {
		n := c.in.lit
		c.in.refuseLiteral()
		c.in.skip, c.in.skipLine = n, true
	}
	c.scan(later)
}

// holdAnswerLocked notes the library's answer to a held APPEND in a
// complete response line; it reports whether the line is its "+", which
// the client must not see.
func (c *imapConn) holdAnswerLocked(line []byte) bool {
	if c.holdTag == "" || c.holdOutcome != holdPending {
		return false
	}
	if string(line) == imapContinuation {
		c.holdOutcome = holdReleased
		return true
	}
	if bytes.HasPrefix(line, []byte(c.holdTag+" ")) {
		c.holdOutcome = holdRefused
	}
	return false
}
