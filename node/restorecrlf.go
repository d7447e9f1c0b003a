package node

import (
	"bytes"
	"io"
)

// crlfWriter passes a message on with every line ended by CRLF, as the
// frontends store what SMTP and IMAP APPEND take (frontend/crlf.go), so
// that a restored message's size is the octets POP3 RETR and IMAP
// BODY[] send (RFC 1939 §11, RFC 5322 §2.1). A Dovecot or Courier
// Maildir holds its messages with bare LFs.
//
//   - a bare LF (one not preceded by CR) becomes CRLF;
//   - a bare CR stays: it is not a line end;
//   - finish ends a last line without a line end with CRLF, or with LF
//     after a final bare CR; an empty message stays empty.
//
// A CR and its LF may come in different writes: the state is the last
// octet passed on.
type crlfWriter struct {
	w    io.Writer
	last byte  // the last octet passed on; LF before the first
	n    int64 // octets passed on
}

func newCRLFWriter(w io.Writer) *crlfWriter { return &crlfWriter{w: w, last: '\n'} }

func (c *crlfWriter) Write(p []byte) (int, error) {
	done := 0
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return done + len(p), c.out(p)
		}
		cr := c.last == '\r'
		if i > 0 {
			cr = p[i-1] == '\r'
		}
		if err := c.out(p[:i]); err != nil {
			return done, err
		}
		end := p[i : i+1]
		if !cr {
			end = crlf
		}
		if err := c.out(end); err != nil {
			return done, err
		}
		done += i + 1
		p = p[i+1:]
	}
	return done, nil
}

var crlf = []byte("\r\n")

// finish completes a last line without a line end.
func (c *crlfWriter) finish() error {
	switch c.last {
	case '\n':
		return nil
	case '\r':
		return c.out(crlf[1:])
	}
	return c.out(crlf)
}

func (c *crlfWriter) out(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	if n > 0 {
		c.last = b[n-1]
	}
	return err
}
