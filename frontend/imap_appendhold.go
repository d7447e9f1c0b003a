package frontend

import "bytes"

// A non-synchronizing literal ("{n+}", RFC 7888) comes right behind the
// line that announces it, without waiting for the server. go-imap's
// server reads a command's arguments in order, and a command it refuses
// before it reaches the literal is answered and discarded up to the end
// of that line: an unknown command (the library reads none of its
// arguments), a known one with an argument it does not take ("NOOP
// {5+}"), a bad argument before the literal (a mailbox name that is not
// modified UTF-7, FETCH 0, a malformed date-time), SEARCH CHARSET with a
// charset it refuses. The literal that follows was then read as
// commands. A literal may carry a message, mail from anyone (APPEND's,
// or one a client passes on): a header field such as "X-A: DELETE
// Archive" ran as a command, tagged "X-A:".
//
// So the wire layer hands the library every such literal made
// synchronizing ("{n}") and holds back what follows. The library answers
// "+" once it has taken what comes before the literal and is about to
// read it; that "+" is not the client's (it sent the literal already)
// and is dropped, and the octets go on to the library. A tagged response
// instead means the command was refused before its literal: the
// literal's n octets and the rest of their line are read and dropped,
// and so is every further non-synchronizing literal those lines announce
// (imapInput.readPast), and the client's next octets are a command again
// (RFC 9051 §7.5 for a refused literal). What is dropped is bounded:
// past imapCollectDrop octets (APPEND messages within MaxAppendBytes
// aside) the session ends with imapReadPastBye.

// imapHoldOutcome is what the library answered to a held literal.
type imapHoldOutcome int

const (
	holdPending  imapHoldOutcome = iota // neither: see releaseHold
	holdReleased                        // "+": the library reads the message
	holdRefused                         // the command's tagged response came first
)

// holdLiteral makes the non-synchronizing literal that the line at the
// end of rout announces a synchronizing one for the library, and holds
// rest, the octets after that line, until the library answers (Read). It
// reports false, and holds nothing, if the "+" of "{n+}" was already
// read by the library, which passOn prevents (a line that passes through
// unheld keeps back the start of an announcement until its end).
func (c *imapConn) holdLiteral(rest []byte) bool {
	c.in.holdLit = false
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

// releaseHold acts on the library's answer to the held literal, once it
// reads again: the literal goes to it, or is dropped. A library that
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
		c.in.loggedIn = c.authed.Load() // set by Login before its OK
		if c.in.readPast(n); c.in.skipOver {
			c.rerr = errIMAPReadPastTooLong
			return
		}
	}
	c.scan(later)
}

// holdAnswerLocked notes the library's answer to a held literal in a
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
