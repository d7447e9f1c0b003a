package frontend

import (
	"bytes"
	"io"
)

// crlfReader passes a message through with every line ended by CRLF, so
// that what is stored is a message as RFC 5322 §2.1 has it (IMAP APPEND
// takes one, RFC 9051 §6.3.12), and what POP3 sends (pop3WriteBody) is
// exactly the stored octets (RFC 1939 §11: LIST and RETR sizes are
// exact):
//
//   - a bare LF (one not preceded by CR) becomes CRLF;
//   - a bare CR (not followed by LF) stays: it is not a line end;
//   - a last line without a line end gets CRLF, and a message that ends
//     in a bare CR gets the LF that makes it CRLF, as pop3WriteBody
//     completes them; an empty message stays empty.
//
// A CR and its LF may arrive in different reads of the source: the state
// is the last octet passed on, not the position in a buffer.
//
// In the usual case (a message with CRLF line ends throughout) the source
// is read straight into the caller's buffer and only scanned, with
// bytes.IndexByte from one LF to the next. Only from the first bare LF
// of a read on is the rest of that read copied aside and expanded, run
// by run, so memory does not depend on the message size.
//
// Neither DKIM signature survives or fails on this: both body
// canonicalizations of RFC 6376 §3.4 read lines as CRLF-terminated and
// treat a missing final CRLF as present, and signers sign the CRLF form
// (RFC 6376 §5.3).
type crlfReader struct {
	r     io.Reader
	last  byte   // the last octet passed on; LF before the first (a line starts)
	rest  []byte // octets read from r, not yet passed on; rest[0] may be a bare LF
	spill []byte // rest's storage, reused
	err   error  // r's error, reported once rest is passed on
	owe   string // the line end still owed at the end of the message
	ended bool   // owe was decided
}

func newCRLFReader(r io.Reader) *crlfReader { return &crlfReader{r: r, last: '\n'} }

func (c *crlfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.rest) > 0 {
		return c.expand(p), nil
	}
	if c.err != nil {
		return c.finish(p)
	}
	n, err := c.r.Read(p)
	c.err = err
	i := bareLF(p[:n], c.last)
	if i == n {
		if n > 0 {
			c.last = p[n-1]
		}
		if n == 0 && err != nil {
			return c.finish(p)
		}
		return n, nil
	}
	c.spill = append(c.spill[:0], p[i:n]...)
	c.rest = c.spill
	if i > 0 {
		c.last = p[i-1]
		return i, nil
	}
	return c.expand(p), nil
}

// expand passes on as much of rest as fits in p, a CR before each bare LF.
func (c *crlfReader) expand(p []byte) int {
	w := 0
	for w < len(p) && len(c.rest) > 0 {
		seg := c.rest[:min(len(c.rest), len(p)-w)]
		i := bareLF(seg, c.last)
		w += copy(p[w:], seg[:i])
		if i > 0 {
			c.last = seg[i-1]
		}
		c.rest = c.rest[i:]
		if i < len(seg) { // rest[0] is a bare LF, and p has room before it
			p[w] = '\r'
			w++
			c.last = '\r' // the LF now follows a CR: the next scan passes it on
		}
	}
	return w
}

// finish passes on the line end owed at the end of the message, then
// the source's error (io.EOF at the end).
func (c *crlfReader) finish(p []byte) (int, error) {
	if c.err == io.EOF && !c.ended {
		c.ended = true
		switch c.last {
		case '\n': // the message is empty, or its last line ended
		case '\r':
			c.owe = "\n"
		default:
			c.owe = "\r\n"
		}
	}
	if len(c.owe) > 0 {
		n := copy(p, c.owe)
		c.owe = c.owe[n:]
		return n, nil
	}
	return 0, c.err
}

// bareLF returns the index of the first LF in b that does not follow a
// CR, or len(b) if there is none; last is the octet before b[0].
func bareLF(b []byte, last byte) int {
	off := 0
	for {
		j := bytes.IndexByte(b[off:], '\n')
		if j < 0 {
			return len(b)
		}
		k := off + j
		prev := last
		if k > 0 {
			prev = b[k-1]
		}
		if prev != '\r' {
			return k
		}
		off = k + 1
	}
}
