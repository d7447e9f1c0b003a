package frontend

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Body sections other than the whole message and the top-level header
// (BODY[1.2], BODY[TEXT], BODY[3.MIME], BINARY[2], BINARY.SIZE[2]) are
// cut from the message as a stream, twice: once to learn the section's
// length, which the literal announces, and once to send it. go-imap's
// Extract* helpers build each section in memory, whole, before applying
// the <partial> window, so a 16 MiB message cost 64 MiB of heap for
// BODY[1]<0.10>; here the cost is a few buffers, whatever the size.

// imapSectionSpec is what to cut from a message: BODY[...] when binary
// is false, BINARY[...] (RFC 3516) when it is true.
type imapSectionSpec struct {
	part      []int
	specifier imap.PartSpecifier
	fields    []string // HEADER.FIELDS
	notFields []string // HEADER.FIELDS.NOT
	binary    bool
}

func imapBodySpec(bs *imap.FetchItemBodySection) imapSectionSpec {
	return imapSectionSpec{part: bs.Part, specifier: bs.Specifier, fields: bs.HeaderFields, notFields: bs.HeaderFieldsNot}
}

func imapBinarySpec(part []int) imapSectionSpec {
	return imapSectionSpec{part: part, binary: true}
}

// errIMAPBadSection: a section RFC 9051's grammar does not allow, which
// go-imap parses all the same (see imapCheckSections).
var errIMAPBadSection = imapBad("Invalid section: part numbers start at 1, and MIME follows a part number")

// imapCheckSections refuses, as a syntax error, the body sections that
// go-imap parses but the grammar has no room for (RFC 3501 and RFC 9051
// section 6.4.5 and section 9, section-part and section-spec; RFC 3516's
// section-binary): a part number 0 (BODY[0], BODY[1.0.TEXT],
// BINARY[0]), and MIME without a part number before it (BODY[MIME]).
// They were answered as if they meant something: the message's header,
// an empty section.
func imapCheckSections(o *imap.FetchOptions) error {
	for _, bs := range o.BodySection {
		if bs.Specifier == imap.PartSpecifierMIME && len(bs.Part) == 0 || slices.Contains(bs.Part, 0) {
			return errIMAPBadSection
		}
	}
	for _, bs := range o.BinarySection {
		if slices.Contains(bs.Part, 0) {
			return errIMAPBadSection
		}
	}
	for _, bs := range o.BinarySectionSize {
		if slices.Contains(bs.Part, 0) {
			return errIMAPBadSection
		}
	}
	return nil
}

// errIMAPUnknownCTE: BINARY of a part whose transfer encoding the server
// cannot undo (RFC 3516 section 4.3).
var errIMAPUnknownCTE = imapNo(imap.ResponseCodeUnknownCTE, "Unknown Content-Transfer-Encoding")

// imapWriteSection writes the section sp of the message r (read from its
// start) to w, without any <partial> window, following RFC 9051 section
// 6.4.5: part numbers walk into multiparts and into attached messages
// (message/rfc822 and message/global, and the parts of a
// multipart/digest without a Content-Type); HEADER and TEXT of a part are
// those of the message it encapsulates; MIME is the part's own header.
// A part that does not exist is an empty section. The only errors are
// w's and errIMAPUnknownCTE; r's are the caller's to check (imapErrReader).
func imapWriteSection(w io.Writer, r io.Reader, sp imapSectionSpec) error {
	if len(sp.part) > imapMaxMIMEDepth+1 {
		// Deeper than BODYSTRUCTURE describes. Every level is a reader
		// that every octet below it passes through: a crafted message
		// of 1000 nested multiparts took 3 s per MiB to reach its
		// bottom part.
		return nil
	}
	br := bufio.NewReader(r)
	header, blank := imapReadHeaderEnd(br)
	parent := ""
	path := sp.part
	if len(path) > 0 && path[0] == 1 && !imapHasParts(header, r, &br) {
		// A message that is not multipart has one part, 1: itself.
		// So has a multipart without parts, which BODYSTRUCTURE
		// describes as text.
		path = path[1:]
	}
	var body io.Reader = br
	for _, n := range path {
		header, body, blank, _ = imapOpenMessage(header, body, parent, blank)
		// header is now a message's, or a part's that is no message:
		// the digest default (RFC 2046 section 5.1.5) is for the
		// digest's own parts, not for the header of a message inside
		// one, which would read the message's body as another message.
		parent = ""
		mh := gomessage.Header{Header: header}
		ct, params, _ := imapContentType(mh)
		if !strings.HasPrefix(strings.ToLower(ct), "multipart/") || params["boundary"] == "" {
			// One part (a multipart without a boundary has no other:
			// BODYSTRUCTURE describes it as text).
			if n != 1 {
				return nil
			}
			continue
		}
		if n < 1 {
			return nil // no part 0 (FETCH refuses it: imapCheckSections)
		}
		mr := newIMAPMultipart(body, params["boundary"])
		var p io.Reader
		for i := 1; i <= n; i++ {
			var err error
			if p, err = mr.next(); err != nil {
				return nil
			}
		}
		parent = strings.ToLower(ct)
		pr := bufio.NewReader(p)
		header, blank = imapReadHeaderEnd(pr)
		body = pr
	}
	if len(sp.part) > 0 && (sp.specifier == imap.PartSpecifierHeader || sp.specifier == imap.PartSpecifierText) {
		var opened bool
		header, body, blank, opened = imapOpenMessage(header, body, parent, blank)
		// RFC 9051 section 6.4.5 leaves the blank line out only for
		// a message with neither body nor blank line; HEADER of a
		// part that is no message (the RFC defines it for messages
		// only) keeps it, as it always did.
		blank = blank || !opened
	}

	if sp.binary {
		if len(sp.part) == 0 {
			if err := imapWriteAll(w, imapHeaderFields(header, &imap.FetchItemBodySection{})); err != nil {
				return err
			}
		}
		dec, err := imapDecodeCTE(header, body)
		if err != nil {
			return err
		}
		_, err = io.Copy(w, dec)
		return imapSectionWriteErr(err)
	}
	switch sp.specifier {
	case imap.PartSpecifierHeader:
		bs := &imap.FetchItemBodySection{HeaderFields: sp.fields, HeaderFieldsNot: sp.notFields}
		return imapWriteAll(w, imapHeaderEnd(imapHeaderFields(header, bs), blank))
	case imap.PartSpecifierMIME:
		return imapWriteAll(w, imapHeaderFields(header, &imap.FetchItemBodySection{}))
	case imap.PartSpecifierNone, imap.PartSpecifierText:
		if len(sp.part) == 0 && sp.specifier == imap.PartSpecifierNone {
			// BODY[] is streamed from the store as it is stored; this
			// is only for completeness.
			if err := imapWriteAll(w, imapHeaderFields(header, &imap.FetchItemBodySection{})); err != nil {
				return err
			}
		}
		_, err := io.Copy(w, body)
		return imapSectionWriteErr(err)
	}
	return nil
}

// imapSectionWriter marks errors of the section's destination, so that a
// copy can tell them from errors of the (decoded) source.
type imapSectionWriter struct{ err error }

func (e *imapSectionWriter) Error() string { return e.err.Error() }
func (e *imapSectionWriter) Unwrap() error { return e.err }

// imapSectionWriteErr keeps the destination's error of a copy and drops
// the source's: a read error of the body is remembered by imapErrReader,
// and a decoding error (bad base64 in the wild) ends the section where
// the decodable data ends, the same on both passes.
func imapSectionWriteErr(err error) error {
	var we *imapSectionWriter
	if errors.As(err, &we) {
		return we.err
	}
	return nil
}

func imapWriteAll(w io.Writer, b []byte) error {
	_, err := w.Write(b)
	return imapSectionWriteErr(err)
}

// imapHasParts reports whether a message with header h, whose body
// follows in *br, is a multipart with at least one part. A multipart
// without a boundary parameter has none. One whose boundary never occurs
// (or that holds only a close delimiter) has none either, which only
// its body tells: r, which *br reads, is read again from the body's
// start as far as the first delimiter, and *br is replaced by a reader
// of the body from its start. That costs the preamble once more (a
// body streamed from a replica opens its stream again), but only when
// the first delimiter is not in what *br has read ahead; when r cannot
// seek, the multipart is taken to have parts.
func imapHasParts(h textproto.Header, r io.Reader, br **bufio.Reader) bool {
	mh := gomessage.Header{Header: h}
	ct, params, _ := imapContentType(mh)
	if !strings.HasPrefix(strings.ToLower(ct), "multipart/") || params["boundary"] == "" {
		return false
	}
	// Nearly always the first delimiter is in what *br holds already;
	// only its complete lines are looked at, since the last may go on.
	held, _ := (*br).Peek((*br).Buffered())
	if i := bytes.LastIndexByte(held, '\n'); i >= 0 {
		if _, err := newIMAPMultipart(bytes.NewReader(held[:i+1]), params["boundary"]).next(); err == nil {
			return true
		}
	}
	sk, ok := r.(io.Seeker)
	if !ok {
		return true
	}
	pos, err := sk.Seek(0, io.SeekCurrent)
	if err != nil {
		return true
	}
	start := pos - int64((*br).Buffered())
	if _, err := sk.Seek(start, io.SeekStart); err != nil {
		return true
	}
	_, err = newIMAPMultipart(r, params["boundary"]).next()
	if _, serr := sk.Seek(start, io.SeekStart); serr != nil {
		// *br still holds the body's start, but r is lost: what is
		// cut from here on comes out short, and the second pass's
		// length check closes the connection.
		return true
	}
	*br = bufio.NewReader(r)
	return err == nil
}

func imapIsMultipart(h textproto.Header) bool {
	mh := gomessage.Header{Header: h}
	ct, _, _ := imapContentType(mh)
	return strings.HasPrefix(strings.ToLower(ct), "multipart/")
}

// imapOpenMessage steps into an attached message: its header and body
// instead of the part's, whether a blank line ended that header (blank
// is the part's own, returned when there is no message to step into),
// and whether it stepped into one. The default type of a part of a
// multipart/digest is message/rfc822 (RFC 2046 section 5.1.5).
func imapOpenMessage(h textproto.Header, body io.Reader, parent string, blank bool) (textproto.Header, io.Reader, bool, bool) {
	mh := gomessage.Header{Header: h}
	ct, _, _ := imapContentType(mh)
	ct = strings.ToLower(ct)
	if !mh.Has("Content-Type") && parent == "multipart/digest" {
		ct = "message/rfc822"
	}
	if ct != "message/rfc822" && ct != "message/global" {
		return h, body, blank, false
	}
	br := bufio.NewReader(body)
	inner, innerBlank := imapReadHeaderEnd(br)
	return inner, br, innerBlank, true
}

// imapDecodeCTE undoes a part's Content-Transfer-Encoding and nothing
// else: BINARY returns the part's octets in its own charset (RFC 3516
// section 4.2). go-message's decoder also converts the charset to UTF-8,
// and without a charset table it failed every ISO-8859-1 part, which
// go-imap then sent as an empty section. A multipart's encoding is
// ignored, as go-message does (RFC 2045 section 6.4 allows only identity
// encodings there).
func imapDecodeCTE(h textproto.Header, body io.Reader) (io.Reader, error) {
	if imapIsMultipart(h) {
		return body, nil
	}
	cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	if i := strings.IndexAny(cte, " \t("); i >= 0 {
		cte = cte[:i] // a trailing comment
	}
	switch cte {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "quoted-printable":
		return quotedprintable.NewReader(body), nil
	case "base64":
		return base64.NewDecoder(base64.RawStdEncoding, &imapBase64Filter{r: body}), nil
	}
	return nil, fmt.Errorf("binary section in %q: %w", cte, errIMAPUnknownCTE)
}

// imapBase64Filter passes only the base64 alphabet, without padding:
// line breaks, spaces and stray characters in the wild do not end the
// decoding, and a short final quantum decodes as far as it goes.
type imapBase64Filter struct{ r io.Reader }

func (f *imapBase64Filter) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		k := 0
		for _, c := range p[:n] {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				p[k] = c
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// imapWindow passes on the octets of a <partial> window (RFC 9051
// section 6.4.5) of what is written to it, and counts all of them.
type imapWindow struct {
	w          io.Writer // nil: count only
	skip, left int64     // octets still to skip, then to pass on
	total      int64
	sent       int64
}

func (c *imapWindow) Write(p []byte) (int, error) {
	c.total += int64(len(p))
	q := p
	if c.skip > 0 {
		k := min(c.skip, int64(len(q)))
		c.skip -= k
		q = q[k:]
	}
	q = q[:min(c.left, int64(len(q)))]
	if len(q) > 0 && c.w != nil {
		n, err := c.w.Write(q)
		c.sent += int64(n)
		if err != nil {
			return 0, &imapSectionWriter{err}
		}
	} else {
		c.sent += int64(len(q))
	}
	c.left -= int64(len(q))
	return len(p), nil
}

// imapNewWindow is a window of p (nil: everything) onto w.
func imapNewWindow(w io.Writer, p *imap.SectionPartial) *imapWindow {
	if p == nil {
		return &imapWindow{w: w, left: 1<<63 - 1}
	}
	return &imapWindow{w: w, skip: p.Offset, left: p.Size}
}

// imapWindowLen is the length of window p of a section of total octets.
func imapWindowLen(total int64, p *imap.SectionPartial) int64 {
	if p == nil {
		return total
	}
	if p.Offset >= total {
		return 0
	}
	return min(p.Size, total-p.Offset)
}

// Seek moves r's position, if r can seek (a stored body can; a body
// section is cut from its start and, for a multipart without parts,
// read there again: imapHasParts).
func (e *imapErrReader) Seek(offset int64, whence int) (int64, error) {
	sk, ok := e.r.(io.Seeker)
	if !ok {
		return 0, errIMAPNoSeek
	}
	return sk.Seek(offset, whence)
}

var errIMAPNoSeek = errors.New("body reader cannot seek")
