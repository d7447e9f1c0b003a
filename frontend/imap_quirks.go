package frontend

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Client input that go-imap's server mishandles, put right below it. The
// library is not changed; this layer sees the client's lines before the
// library does (a literal's length included) and the library's
// responses before the client does.

// imapLiteralLimit is the largest literal go-imap's server reads into
// memory: every literal but APPEND's message (its checkBufferedLiteral).
// Over it, the library drops its own NO [TOOBIG] and goes on parsing, so
// a client holding a synchronizing literal back for "+" and the library
// waiting for more input would wait for each other for ever.
const imapLiteralLimit = 4096

// imapTooBigStatus refuses such a literal (RFC 9051 §7.1, TOOBIG), as
// the library meant to.
const imapTooBigStatus = "NO [TOOBIG] Literals are limited to 4096 octets for this command"

// imapTooBigBye ends a session whose oversized literal comes after the
// library has started on the command: it can no longer be answered
// alone.
const imapTooBigBye = "* BYE [TOOBIG] Literals are limited to 4096 octets for this command\r\n"

// errIMAPLiteralTooBig ends the library's reading after imapTooBigBye.
var errIMAPLiteralTooBig = errors.New("imap: literal over the limit after the command began")

// errIMAPAppendTooBig ends the library's reading after an APPEND whose
// non-synchronizing message literal is over MaxAppendBytes. The library
// refuses the command (NO [TOOBIG]) without reading the literal, and
// would then parse the message as commands: a line of it such as
// "x DELETE Archive" would run. Reading past the octets instead would
// cost up to 2^63 of them, so the session ends, with imapAppendTooBigBye,
// once the library has answered the command (RFC 7888 leaves a server
// the choice of reading the octets or closing the connection).
var errIMAPAppendTooBig = errors.New("imap: non-synchronizing APPEND message over the limit")

// imapAppendTooBigBye is the last line of a session that sent such a
// message (RFC 9051 §7.1, TOOBIG).
func imapAppendTooBigBye(limit int64) string {
	return fmt.Sprintf("* BYE [TOOBIG] Messages are limited to %d octets (APPENDLIMIT)\r\n", limit)
}

// errIMAPReadPastTooLong ends the library's reading after a command it
// refused before its non-synchronizing literal, when what the wire layer
// must then read past runs over imapCollectDrop (imap_appendhold.go).
var errIMAPReadPastTooLong = errors.New("imap: refused command's literals over the limit")

// imapReadPastBye is the last line of such a session (RFC 9051 §7.1,
// TOOBIG).
const imapReadPastBye = "* BYE [TOOBIG] A refused command's literals are read past up to 65536 octets\r\n"

// errIMAPLineTooLong ends the library's reading of a command longer
// than it reads (imapCommandMax), once the commands before it are
// answered: the command gets no answer of its own, since the library,
// which has its start, would run its end as another command.
var errIMAPLineTooLong = errors.New("imap: command over the library's limit")

// imapLineTooLongBye is the last line of such a session (RFC 9051 §7.1,
// TOOBIG).
const imapLineTooLongBye = "* BYE [TOOBIG] Commands are limited to 51200 octets, literals aside\r\n"

// tooBigBye returns the BYE that ends a session whose literal was too
// big once the library has read what came before it, or "" if err is no
// such end.
func (c *imapConn) tooBigBye(err error) string {
	switch {
	case errors.Is(err, errIMAPLiteralTooBig):
		return imapTooBigBye
	case errors.Is(err, errIMAPAppendTooBig):
		return imapAppendTooBigBye(c.in.appendMax)
	case errors.Is(err, errIMAPReadPastTooLong):
		return imapReadPastBye
	case errors.Is(err, errIMAPLineTooLong):
		return imapLineTooLongBye
	}
	return ""
}

// imapParsedCommands are the commands go-imap's server parses arguments
// of. An unknown command's line is discarded whole by the library, with
// no literal read, so it never waits: it is left to the library (which
// ends an unauthenticated connection at one, a defence against other
// protocols).
var imapParsedCommands = map[string]bool{
	"AUTHENTICATE": true, "LOGIN": true, "ENABLE": true, "CREATE": true, "DELETE": true,
	"RENAME": true, "SUBSCRIBE": true, "UNSUBSCRIBE": true, "STATUS": true, "LIST": true,
	"LSUB": true, "SELECT": true, "EXAMINE": true, "APPEND": true, "FETCH": true,
	"STORE": true, "COPY": true, "MOVE": true, "SEARCH": true, "EXPUNGE": true, "UID": true,
}

// bufferedLiteral reports whether the literal that line announces is one
// the library limits to imapLiteralLimit. whole says line is a command's
// first line, held whole. APPEND's message is the exception: the
// literal on its first line, unless that line is only the mailbox's
// ("tag APPEND {n}"), or any literal after.
func (in *imapInput) bufferedLiteral(line []byte, first, whole bool) bool {
	name := string(in.name)
	switch {
	case !imapParsedCommands[name]:
		return false
	case name != "APPEND":
		return true
	case !first || !whole:
		return false
	}
	_, _, args, _ := imapCommand(line)
	return len(args) > 0 && args[0] == '{'
}

// imapServerBugLine is the tagged status go-imap's server sends for any
// error that is not an *imap.Error. The session never returns one (see
// imap_errors.go), so it comes from the library's own parsing of the
// client's arguments, whose errors are plain ones: a mailbox name that is
// not modified UTF-7 or holds a control character, a sequence set with
// 0, a malformed date, a SASL response that is not base64 or not a PLAIN
// message. (The library logs the error itself.)
const imapServerBugLine = " NO [SERVERBUG] Internal server error\r\n"

// imapBadMailboxText explains a refused mailbox name (RFC 9051 §5.1.3).
const imapBadMailboxText = `Mailbox name is not modified UTF-7 (write "&" as "&-") or has a control character`

// imapClientErrorStatus is what a command that the library refused with
// NO [SERVERBUG] is answered instead, by its name (as noted for metrics;
// "" or "other" when unknown): its client's error, with the code that
// fits (RFC 9051 §7.1).
func imapClientErrorStatus(name string) string {
	switch name {
	case "AUTHENTICATE":
		// RFC 9051 §6.2.2: a response that is not base64 is refused with
		// BAD; a PLAIN message without its three fields (RFC 4616 §2) is
		// as malformed, and a password prompt would not help.
		return "BAD [CLIENTBUG] Malformed SASL response: not base64, or not a PLAIN message"
	case "CREATE", "RENAME":
		return "NO [CANNOT] " + imapBadMailboxText
	case "SELECT", "EXAMINE", "STATUS", "DELETE", "SUBSCRIBE":
		return "NO [NONEXISTENT] " + imapBadMailboxText
	case "UNSUBSCRIBE":
		// No such name is subscribed (RFC 9051 §6.3.8), as for a name
		// with a control character that reaches the session.
		return "OK UNSUBSCRIBE completed"
	case "LIST", "LSUB":
		return "BAD [CLIENTBUG] " + imapBadMailboxText
	case "APPEND":
		return "BAD [CLIENTBUG] Invalid mailbox name or date-time: " + imapBadMailboxText
	case "COPY", "MOVE", "UID COPY", "UID MOVE":
		return "BAD [CLIENTBUG] Invalid sequence set or mailbox name"
	case "FETCH", "STORE", "UID FETCH", "UID STORE", "UID EXPUNGE":
		return "BAD [CLIENTBUG] Invalid sequence set: numbers start at 1"
	case "SEARCH", "UID SEARCH":
		// The parser takes a word that is no search key for a sequence
		// set, and refuses it as one: the key is the likelier mistake.
		return "BAD [CLIENTBUG] Unknown search key, or an invalid sequence set or date"
	}
	return "BAD [CLIENTBUG] Invalid command arguments"
}

// imapClientError returns the answer that replaces a complete response
// line that is the library's NO [SERVERBUG], or nil for any other line;
// names are the commands in flight by tag.
func imapClientError(line []byte, names map[string]string) []byte {
	tag, ok := bytes.CutSuffix(line, []byte(imapServerBugLine))
	if !ok || len(tag) == 0 || tag[0] == '*' || bytes.IndexByte(tag, ' ') >= 0 {
		return nil
	}
	return []byte(string(tag) + " " + imapClientErrorStatus(names[string(tag)]) + "\r\n")
}

// imapEmptyChallenge is how the library sends an empty SASL challenge:
// "=", RFC 4959's form for a client's empty initial response, which is
// no base64 (RFC 9051 §9). An empty challenge is an empty base64 string
// (RFC 9051 §6.2.2's example: "+ "), which it becomes here.
const (
	imapEmptyChallenge = "+ =\r\n"
	imapEmptyBase64    = "+ \r\n"
)

// imapClientInputErrors are the library's parser errors that come from
// the client's arguments, as it logs them ("handling CREATE command:
// utf7: invalid UTF-7"). Any other error it answers NO [SERVERBUG] (now
// CLIENTBUG) is logged as a warning: it would be a bug here or there.
var imapClientInputErrors = []string{
	"utf7: invalid UTF-7", "invalid UTF-8", "illegal base64 data", "sasl: invalid response",
	"sasl: unexpected client response", "SASL response too long", "bad number set",
	"in date", "imapwire: exceeded max depth",
	"unexpected EOF", // the client hung up, or sent a literal too big, mid-command
}

// imapClientInputError reports whether a message of the library's log is
// its refusal of a client's arguments.
func imapClientInputError(msg string) bool {
	rest, ok := strings.CutPrefix(msg, "handling ")
	if !ok {
		return false
	}
	_, err, ok := strings.Cut(rest, " command: ")
	if !ok {
		return false
	}
	for _, e := range imapClientInputErrors {
		if strings.HasPrefix(err, e) || strings.Contains(err, ": "+e) {
			return true
		}
	}
	return false
}
