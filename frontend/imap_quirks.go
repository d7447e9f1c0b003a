package frontend

import (
	"errors"
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
