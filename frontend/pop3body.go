package frontend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// pop3WriteBody streams a message from r to w as the body of a multi-line
// response (RFC 1939 §3): every line ends in CRLF, a line that begins
// with "." gets one more "." in front, and ".\r\n" ends the response.
// With top >= 0 it sends the header section, the blank line after it,
// and then at most top lines of the body (RFC 1939 §7 TOP); with top < 0
// the whole message.
//
// Bodies are stored with CRLF line ends (crlfReader), but one stored
// before that may hold bare LFs or lack a final line end. A bare LF
// is sent as CRLF, and a last line without a line end gets one: clients
// split lines on LF as often as on CRLF, and a line that only one of
// them sees would let a message's text pass for the terminator or for a
// server reply. The terminator is written only after r reached EOF; on a
// read error nothing more is written and the error is returned, so the
// caller can drop the connection instead of ending a truncated message.
//
// buf is the read buffer; memory use does not depend on the message size.
func pop3WriteBody(w *bufio.Writer, r io.Reader, top int, buf []byte) error {
	s := pop3Stuffer{w: w, top: top, lineStart: true}
	for !s.done {
		n, rerr := r.Read(buf)
		if n > 0 {
			if err := s.write(buf[:n]); err != nil {
				return fmt.Errorf("pop3: writing message: %w", err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("pop3: reading message: %w", rerr)
		}
	}
	if !s.lineStart {
		eol := "\r\n"
		if s.prevCR { // the message ends in a bare CR: complete the CRLF
			eol = "\n"
		}
		if _, err := w.WriteString(eol); err != nil {
			return fmt.Errorf("pop3: writing message: %w", err)
		}
	}
	if _, err := w.WriteString(".\r\n"); err != nil {
		return fmt.Errorf("pop3: writing message: %w", err)
	}
	return nil
}

// pop3Stuffer is pop3WriteBody's line state, kept across reads.
type pop3Stuffer struct {
	w         *bufio.Writer
	top       int   // body lines to send, < 0 for all
	lineStart bool  // the next byte begins a line
	prevCR    bool  // the last byte written was CR
	lineLen   int64 // octets of the current line so far
	inBody    bool  // the blank line after the header section was sent
	bodyLines int   // body lines sent
	done      bool  // TOP has sent all it should
}

func (s *pop3Stuffer) write(p []byte) error {
	for len(p) > 0 {
		if s.lineStart {
			if s.top >= 0 && s.inBody && s.bodyLines >= s.top {
				s.done = true
				return nil
			}
			if p[0] == '.' {
				if err := s.w.WriteByte('.'); err != nil {
					return err
				}
			}
			s.lineStart = false
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if _, err := s.w.Write(p); err != nil {
				return err
			}
			s.lineLen += int64(len(p))
			s.prevCR = p[len(p)-1] == '\r'
			return nil
		}
		crBefore := s.prevCR
		if i > 0 {
			crBefore = p[i-1] == '\r'
		}
		if _, err := s.w.Write(p[:i]); err != nil {
			return err
		}
		s.lineLen += int64(i)
		eol := "\n"
		if !crBefore {
			eol = "\r\n"
		}
		if _, err := s.w.WriteString(eol); err != nil {
			return err
		}
		empty := s.lineLen == 0 || (s.lineLen == 1 && crBefore)
		switch {
		case s.inBody:
			s.bodyLines++
		case empty:
			s.inBody = true
		}
		s.lineStart, s.prevCR, s.lineLen = true, false, 0
		p = p[i+1:]
	}
	return nil
}
