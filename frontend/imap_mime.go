package frontend

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// imapMultipart splits the body of a multipart entity into its parts
// (RFC 2046 section 5.1.1) as a stream, for BODYSTRUCTURE, body sections
// and SEARCH. go-message's multipart reader parses each part's header
// without a bound: a part (or a message) whose header is 8 MiB of "a:b"
// lines took 700 MiB of heap to describe, and a 50 MiB one, which SMTP
// accepts from anyone, would take the node down on the first FETCH
// BODYSTRUCTURE. Here a part is only octets; its header is read by
// imapReadHeader, which keeps at most imapMaxHeader of it.
//
// A delimiter is "--" boundary at the start of a line, then optional
// white space (transport padding), then the line end; "--" boundary "--"
// closes the multipart. The line end before a delimiter belongs to the
// delimiter, not to the part. A line longer than the read buffer is
// never a delimiter (a boundary is at most 70 characters).
type imapMultipart struct {
	br       *bufio.Reader
	boundary []byte // "--" + boundary
	cur      *imapPartReader
	closed   bool // the close delimiter was read, or the body ended
}

func newIMAPMultipart(r io.Reader, boundary string) *imapMultipart {
	mp := &imapMultipart{br: bufio.NewReaderSize(r, 4096), boundary: []byte("--" + boundary)}
	mp.cur = &imapPartReader{mp: mp, lineStart: true} // the preamble
	return mp
}

// next skips the rest of the current part (or the preamble) and returns
// the next part's octets, header included. At the close delimiter, or at
// the end of the body, it returns io.EOF; any other error is the
// underlying reader's.
func (mp *imapMultipart) next() (io.Reader, error) {
	if _, err := io.Copy(io.Discard, mp.cur); err != nil {
		return nil, err
	}
	if mp.closed {
		return nil, io.EOF
	}
	mp.cur = &imapPartReader{mp: mp, lineStart: true}
	return mp.cur, nil
}

// delimiter reports whether line (with its line end) is a delimiter
// line, and whether it is the close delimiter.
func (mp *imapMultipart) delimiter(line []byte) (is, closing bool) {
	rest, ok := bytes.CutPrefix(line, mp.boundary)
	if !ok {
		return false, false
	}
	if r, ok := bytes.CutPrefix(rest, []byte("--")); ok {
		rest, closing = r, true
	}
	return len(bytes.TrimRight(rest, " \t\r\n")) == 0, closing
}

// plainLines is the length of the whole lines at the start of what br
// holds that cannot be delimiters (none begins with the boundary), as
// far as the first line that might be one; 0 if there is none.
func (mp *imapMultipart) plainLines() int {
	buf, _ := mp.br.Peek(mp.br.Buffered())
	n := 0
	for !bytes.HasPrefix(buf[n:], mp.boundary) {
		j := bytes.IndexByte(buf[n:], '\n')
		if j < 0 {
			break
		}
		n += j + 1
	}
	return n
}

// imapPartReader reads one part, up to (not including) the line end
// before the next delimiter.
type imapPartReader struct {
	mp        *imapMultipart
	pend      []byte // octets read and not yet returned
	out       []byte // pend's storage, reused
	held      []byte // the last line's end (or a CR that may start one), withheld until the next read shows it is content
	heldBuf   [2]byte
	lineStart bool // the next octet read starts a line
	done      bool
}

func (p *imapPartReader) Read(b []byte) (int, error) {
	for len(p.pend) == 0 {
		if p.done {
			return 0, io.EOF
		}
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.pend)
	p.pend = p.pend[n:]
	return n, nil
}

// fill reads lines into pend, up to a few KiB of them (a reader nested
// in this one then gets large reads, not one line each, which made 32
// levels of nesting cost 25 times as much), stopping at the delimiter.
func (p *imapPartReader) fill() error {
	mp := p.mp
	out := p.out[:0]
	for len(out) < 4096 && !p.done {
		if p.lineStart {
			if n := mp.plainLines(); n > 0 {
				// Whole lines none of which can be a delimiter, as
				// the loop below would pass them, in one copy: with
				// a line at a time, every level of a nested
				// multipart cost a ReadSlice per line below it.
				seg, _ := mp.br.Peek(n)
				end := len(seg) - 1
				if end > 0 && seg[end-1] == '\r' {
					end--
				}
				out = append(append(out, p.held...), seg[:end]...)
				p.held = append(p.heldBuf[:0], seg[end:]...)
				_, _ = mp.br.Discard(n)
				continue
			}
		}
		line, err := mp.br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return err // the section fails as a whole
		}
		if p.lineStart && len(line) >= len(mp.boundary) && line[0] == '-' {
			if is, closing := mp.delimiter(line); is && (err == nil || errors.Is(err, io.EOF)) {
				p.done, p.held = true, nil
				mp.closed = closing || errors.Is(err, io.EOF)
				break
			}
		}
		if len(p.held) == 1 && p.held[0] == '\r' && err == nil && len(line) == 1 {
			// The LF after a CR that ended the last read of a long
			// line: together they are the line end, withheld like
			// any other.
			p.held = append(p.heldBuf[:0], '\r', '\n')
			p.lineStart = true
			continue
		}
		out = append(out, p.held...)
		p.held = nil
		p.lineStart = err == nil
		switch {
		case p.lineStart:
			// Withhold the line end: a delimiter may follow.
			end := len(line) - 1
			if end > 0 && line[end-1] == '\r' {
				end--
			}
			p.held = append(p.heldBuf[:0], line[end:]...)
			line = line[:end]
		case errors.Is(err, bufio.ErrBufferFull) && line[len(line)-1] == '\r':
			// A line longer than the buffer can have its CRLF cut in
			// two by the read: the CR waits for the next read, which
			// tells whether it ends the line. A line of 4095 octets
			// before a delimiter kept its CR in the part.
			p.held = append(p.heldBuf[:0], '\r')
			line = line[:len(line)-1]
		}
		out = append(out, line...)
		if errors.Is(err, io.EOF) {
			// The body ended without a close delimiter: what there is
			// belongs to the last part.
			p.done, mp.closed = true, true
		}
	}
	p.out, p.pend = out, out
	return nil
}
