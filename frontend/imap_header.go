package frontend

import (
	"bufio"
	"bytes"
	"errors"

	"github.com/emersion/go-message/textproto"
)

// imapReadHeader reads a header section from br, as textproto.ReadHeader
// does, but passes over a field it cannot parse instead of stopping
// there. go-message ends the header at the first line without a colon
// (an mbox "From " line, a stray word, a bad field name), and every
// field after it would be lost to ENVELOPE, BODY[HEADER.FIELDS],
// BODYSTRUCTURE and header SEARCH keys. RFC 5322 §2.2 defines a field as
// a name of printable characters other than the colon, then a colon;
// anything else is skipped with its continuation lines. br is left at
// the start of the body, past the blank line.
func imapReadHeader(br *bufio.Reader) textproto.Header {
	h, _ := imapReadHeaderEnd(br)
	return h
}

// imapReadHeaderEnd is imapReadHeader, and reports whether a blank line
// ended the header section: a message that is all header has none, and
// its header sections get none either (RFC 9051 section 6.4.5).
func imapReadHeaderEnd(br *bufio.Reader) (textproto.Header, bool) {
	clean, blank := imapCleanHeader(br)
	h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(clean))) // every kept line parses
	return h, blank
}

// imapCleanHeader reads a header section from br, past its blank line,
// and returns the fields go-message can parse, each line ending in CRLF,
// then the blank line. It keeps at most imapMaxHeader octets of fields
// and reads past the rest: go-message's parse costs about 90 bytes of
// heap per octet of "a:b" lines, so an unbounded header of a 50 MiB
// message would take gigabytes. A field that does not fit is dropped
// whole, so that one huge field (a To: of thousands of addresses) does
// not cost the Content-Type after it. blank reports whether the section
// ended at a blank line rather than at the end of br.
func imapCleanHeader(br *bufio.Reader) (clean []byte, blank bool) {
	var kept bytes.Buffer
	keep := false
	start := 0 // where the current field begins in kept
	var line []byte
	for {
		var err error
		line, err = imapRawLine(br, line[:0], imapMaxHeader)
		content := bytes.TrimRight(line, "\r\n")
		if len(content) == 0 { // the blank line, or the end
			// A line ends in LF: CRs at the very end are no blank line
			// (imapEndsBlank, which the header cache asks, agrees).
			blank = bytes.HasSuffix(line, []byte("\n"))
			break
		}
		fits := kept.Len()+len(content)+2 <= imapMaxHeader
		switch {
		case content[0] != ' ' && content[0] != '\t':
			keep, start = fits && imapFieldStart(content), kept.Len()
		case keep && !fits:
			kept.Truncate(start)
			keep = false
		}
		if keep {
			kept.Write(content)
			kept.WriteString("\r\n")
		}
		if err != nil {
			break
		}
	}
	kept.WriteString("\r\n")
	return kept.Bytes(), blank
}

// imapRawLine appends one line of br to buf, with its terminator, and
// reads past whatever of it goes beyond max octets (such a line is not
// kept).
func imapRawLine(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	for {
		part, err := br.ReadSlice('\n')
		if len(buf) < max {
			buf = append(buf, part...)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}

// imapFieldStart reports whether a header line begins a field that
// go-message parses: a non-empty name of printable ASCII other than the
// colon (spaces and tabs around it allowed), then a colon.
func imapFieldStart(line []byte) bool {
	name, _, ok := bytes.Cut(line, []byte{':'})
	name = bytes.Trim(name, " \t")
	if !ok || len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}
