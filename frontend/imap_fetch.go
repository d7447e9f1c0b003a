package frontend

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"powermail/node"
)

// imapWriteError is a failed write to the client: the connection is
// lost, so the command ends with it and the library closes it.
type imapWriteError struct{ err error }

func (e imapWriteError) Error() string { return "writing to client: " + e.err.Error() }
func (e imapWriteError) Unwrap() error { return e.err }

// Fetch answers FETCH and UID FETCH (RFC 9051 section 6.4.5) from the
// snapshot (UID, FLAGS, INTERNALDATE, RFC822.SIZE) and from the body
// (everything else), which is opened only when an item needs it.
//
// A body section without PEEK sets \Seen first (unless the folder is
// read-only), and the new flags go into that message's FETCH response. If
// a body cannot be read, the other messages are still answered and the
// command ends NO: [EXPUNGEISSUED] when the message had been expunged
// meanwhile (whether or not this session has polled since), else the
// store's error.
func (s *imapSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel, addr, err := s.selected()
	if err != nil {
		return err
	}
	if err := imapCheckSections(options); err != nil {
		return err
	}
	if err := s.fetchOverLimit(options); err != nil {
		return err
	}
	idx, err := sel.resolve(numSet, true)
	if err != nil || len(idx) == 0 {
		return err
	}

	seen := map[uint32]bool{} // messages this FETCH marked \Seen
	if !sel.readOnly && imapFetchSetsSeen(options) {
		unseen := fetchUnseen(sel, idx)
		if len(unseen) > 0 {
			ctx, cancel := s.callCtx()
			changed, err := s.srv.store.StoreFlags(ctx, addr, sel.name, unseen, node.FlagsAdd, []string{string(imap.FlagSeen)}, sel.check())
			cancel()
			if err != nil {
				return s.storeError("fetch", err, imap.ResponseCodeNonExistent)
			}
			for _, c := range changed {
				if i, ok := sel.index(c.UID); ok {
					sel.msgs[i].flags = slices.Clone(c.Flags)
					seen[c.UID] = true
				}
			}
		}
	}

	var failed error
	expungeIssued := false
	var present func(uid uint32) bool // is uid in the folder now? Read on the first failure
	for _, i := range idx {
		m := sel.msgs[i]
		err := s.fetchMessage(w, uint32(i+1), &m, options, seen[m.uid])
		var we imapWriteError
		if err != nil && !m.gone && present == nil && !errors.As(err, &we) {
			present = s.currentUIDs(addr, sel)
		}
		switch {
		case err == nil:
		case errors.As(err, &we):
			return we.err
		case m.gone, present != nil && !present(m.uid):
			// Expunged by another session (and, once no message
			// refers to it, its body collected) before this session
			// polled: not a failure of the store (RFC 9051 section 7.1,
			// EXPUNGEISSUED). The next successful command's poll
			// reports the EXPUNGE.
			expungeIssued = true
		case failed == nil:
			failed = err
		}
	}
	if failed != nil {
		return s.storeError("fetch", failed, imap.ResponseCodeNonExistent)
	}
	if expungeIssued {
		return imapNo(imapCodeExpungeIssued, "Some messages were expunged meanwhile")
	}
	return nil
}

// fetchUnseen is what a FETCH that sets \Seen must mark: the fetched
// messages without it. Seen ones between them would split the UIDs into
// more ranges than one command carries (node.MaxUIDRanges: a folder read
// here and there), and the whole FETCH would fail; then every fetched
// message is marked instead, which changes nothing for the seen ones.
func fetchUnseen(sel *imapSelected, idx []int) []uint32 {
	var unseen, all []uint32
	runs, inRun := 0, false
	for _, i := range idx {
		m := &sel.msgs[i]
		if m.gone {
			continue
		}
		all = append(all, m.uid)
		if m.has(imap.FlagSeen) {
			inRun = false
			continue
		}
		if !inRun {
			runs, inRun = runs+1, true
		}
		unseen = append(unseen, m.uid)
	}
	if len(unseen) > 0 && runs > node.MaxUIDRanges {
		return all
	}
	return unseen
}

// currentUIDs tells which UIDs the selected folder holds now, from a
// fresh view (in UID order, shared node-wide and only read); nil if that
// cannot be read or the folder is not the selected one any more.
func (s *imapSession) currentUIDs(addr string, sel *imapSelected) func(uid uint32) bool {
	ctx, cancel := s.callCtx()
	defer cancel()
	view, err := s.srv.store.View(ctx, addr, sel.name)
	if err != nil || !sel.same(view.Folder) {
		return nil
	}
	return func(uid uint32) bool { return viewHolds(view, uid) }
}

// imapFetchSetsSeen: BODY[...], BINARY[...] and RFC822(.TEXT) without
// PEEK set \Seen (RFC 9051 section 6.4.5).
func imapFetchSetsSeen(o *imap.FetchOptions) bool {
	for _, bs := range o.BodySection {
		if !bs.Peek {
			return true
		}
	}
	for _, bs := range o.BinarySection {
		if !bs.Peek {
			return true
		}
	}
	return false
}

// imapNeedsBody: some item needs the body itself (the header and a known
// BODYSTRUCTURE come from the cache).
func imapNeedsBody(o *imap.FetchOptions) bool {
	return o.BodyStructure != nil || imapNeedsStream(o)
}

// imapNeedsStream: some item must read the body, whatever is cached.
func imapNeedsStream(o *imap.FetchOptions) bool {
	return slices.ContainsFunc(o.BodySection, func(bs *imap.FetchItemBodySection) bool { return !imapHeaderOnly(bs) }) ||
		len(o.BinarySection) > 0 || len(o.BinarySectionSize) > 0
}

// imapHeaderOnly reports a section of the top-level header only
// (BODY[HEADER], BODY[HEADER.FIELDS (...)], BODY[HEADER.FIELDS.NOT (...)]).
func imapHeaderOnly(bs *imap.FetchItemBodySection) bool {
	return len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierHeader
}

// imapWholeBody reports a section that is the entire message (BODY[],
// RFC822), which is streamed from the store instead of parsed.
func imapWholeBody(bs *imap.FetchItemBodySection) bool {
	return len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierNone &&
		len(bs.HeaderFields) == 0 && len(bs.HeaderFieldsNot) == 0
}

// fetchMessage writes one FETCH response. Everything that can fail is
// computed before the response begins, except the streaming of a whole
// body; if that fails midway, the promised literal cannot be completed
// and the connection is closed.
func (s *imapSession) fetchMessage(w *imapserver.FetchWriter, seq uint32, m *imapMsg, o *imap.FetchOptions, seenChanged bool) error {
	p := newIMAPFetchPlan(s, m, o)
	if err := p.fromCache(); err != nil {
		return err
	}
	if imapNeedsBody(o) && (p.bstruct == nil || imapNeedsStream(o)) {
		// One message's transfer is bounded by TransferTimeout, and the
		// body's context lives until it has been written out.
		ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.TransferTimeout)
		defer cancel()
		b, err := s.srv.store.OpenBody(ctx, m.hash)
		if err != nil {
			return fmt.Errorf("open body of uid %d: %w", m.uid, err)
		}
		defer b.Close()
		if err := p.measure(b); err != nil {
			return err
		}
	}
	if p.bstruct != nil && !s.quotedUTF8() {
		p.bstruct = imapSevenBitStructure(p.bstruct) // imap_bodyparams.go
	}
	rw := w.CreateMessage(seq)
	p.writeAttributes(rw, seenChanged)
	if err := p.writeSections(rw); err != nil {
		_ = rw.Close() // releases the library's write lock
		return err
	}
	if err := rw.Close(); err != nil {
		return imapWriteError{err}
	}
	return nil
}

// streamBody copies the whole body, or its <partial> window, from the
// store to the client without holding it in memory.
func (s *imapSession) streamBody(rw *imapserver.FetchResponseWriter, bs *imap.FetchItemBodySection, body node.Body) error {
	size := body.Size()
	off, n := int64(0), size
	if p := bs.Partial; p != nil {
		off = min(p.Offset, size)
		n = min(p.Size, size-off)
	}
	wc := rw.WriteBodySection(bs, n)
	_, err := body.Seek(off, io.SeekStart)
	switch {
	case err != nil:
	case off+n == size:
		// The window runs to the body's end, where the body is
		// checked: a whole body read from its start, or a streamed
		// one, which is hashed across the octets a Seek skips.
		err = imapCopyToEnd(wc, body, n)
	default:
		_, err = io.CopyN(wc, body, n)
	}
	return s.endLiteral(wc, "body", err)
}

// imapCopyToEnd copies the last n octets of a body, or the whole body
// read from its start, to its literal. The body is checked against its
// hash when the reader meets its end, after its last octet was read (a
// local copy read from past its start only against its chunk
// checksums, and it says io.EOF): that octet is written
// only once the reader said io.EOF, so a body that fails the check
// leaves its literal short. A client that hands a literal to its
// application as it arrives would otherwise have the whole damaged
// message before the connection was cut.
func imapCopyToEnd(w io.Writer, body io.Reader, n int64) error {
	var last [1]byte
	if n > 0 {
		if _, err := io.CopyN(w, body, n-1); err != nil {
			return err
		}
		// ReadFull may drop an error that comes with the octet; the
		// body readers repeat it at the next Read (it is sticky).
		if _, err := io.ReadFull(body, last[:]); err != nil {
			return err
		}
	}
	if _, err := body.Read(make([]byte, 1)); err != io.EOF {
		return cmp.Or(err, errors.New("body longer than its size"))
	}
	if n == 0 {
		return nil
	}
	_, err := w.Write(last[:])
	return err
}

// endLiteral closes a streamed literal. After a failure (err) its
// promised length cannot be met, so the connection is beyond repair: it
// is closed, and the client retries.
func (s *imapSession) endLiteral(wc io.WriteCloser, what string, err error) error {
	if err != nil {
		s.log.Warn("imap: "+what+" failed while streaming, closing connection", "err", err)
		_ = s.conn.NetConn().Close()
		_ = wc.Close()
		return imapWriteError{err}
	}
	if err := wc.Close(); err != nil {
		return imapWriteError{err}
	}
	return nil
}

// streamSection writes a section measured at n octets (after its
// <partial> window) into its literal wc, cutting it from the body again.
// A second pass that does not give the same n octets (the body failed
// verification, or a replica disagrees) leaves a literal that cannot be
// completed honestly, and the connection is closed, as in streamBody.
func (s *imapSession) streamSection(wc io.WriteCloser, n int64, body node.Body, src *imapErrReader, sp imapSectionSpec, p *imap.SectionPartial) error {
	_, err := body.Seek(0, io.SeekStart)
	if err == nil {
		err = imapResendSection(wc, src, sp, p, n)
	}
	if we := (imapWriteError{}); errors.As(err, &we) {
		_ = wc.Close()
		return err
	}
	return s.endLiteral(wc, "section", err)
}

// imapResendSection writes the <partial> window p of section sp, cut
// again from the body (src, read from its start), to its literal w,
// which promises n octets. Errors writing to w are imapWriteError;
// any other is the body's.
//
// The body is checked against its hash when the reader meets its end,
// after the section's octets were read, so the literal's last octet is
// held back until the rest of the body has been read past and the
// reader said io.EOF (as imapCopyToEnd does for BODY[]): a body that
// fails there leaves the literal short, and a client that hands a
// literal to its application as it arrives never has the whole section
// of a damaged body. A section that ends before the body (BODY[1] of a
// multipart) costs reading the rest of the body.
func imapResendSection(w io.Writer, src *imapErrReader, sp imapSectionSpec, p *imap.SectionPartial, n int64) error {
	hold := &imapHoldLast{w: w, n: n}
	win := imapNewWindow(hold, p)
	if err := imapWriteSection(win, src, sp); err != nil {
		// Only writing to the client fails here (an unknown
		// encoding failed the first pass already).
		return imapWriteError{err}
	}
	_, _ = io.Copy(io.Discard, src) // src remembers a read error
	if src.err != nil {
		return src.err
	}
	if win.sent != n {
		return fmt.Errorf("section is %d octets on the second read, %d on the first", win.sent, n)
	}
	if err := hold.release(); err != nil {
		return imapWriteError{err}
	}
	return nil
}

// imapHoldLast passes the first n-1 octets written to it on to w and
// keeps the n-th until release. Octets past n are counted by the
// window above it and never reach w.
type imapHoldLast struct {
	w    io.Writer
	n    int64 // octets the literal promises
	seen int64
	last byte
}

func (h *imapHoldLast) Write(p []byte) (int, error) {
	pass := min(int64(len(p)), max(h.n-1-h.seen, 0))
	if pass > 0 {
		if _, err := h.w.Write(p[:pass]); err != nil {
			return 0, err
		}
	}
	if i := h.n - 1 - h.seen; i >= 0 && i < int64(len(p)) {
		h.last = p[i]
	}
	h.seen += int64(len(p))
	return len(p), nil
}

// release writes the held octet, once the body has passed.
func (h *imapHoldLast) release() error {
	if h.n == 0 {
		return nil
	}
	_, err := h.w.Write([]byte{h.last})
	return err
}

// imapErrReader remembers the first read error: go-imap's extract helpers
// swallow errors, and a body that fails verification must not be served
// as if it were shorter.
type imapErrReader struct {
	r   io.Reader
	err error
}

func (e *imapErrReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// imapMaxMIMEDepth bounds how deep BODYSTRUCTURE follows nested
// multiparts and messages. go-imap's ExtractBodyStructure recurses without
// a limit: a crafted 50 MiB message of nested multiparts would exhaust
// the goroutine stack, which is fatal to the whole node, not just the
// session. Deeper levels are described as one opaque part.
const imapMaxMIMEDepth = 32

// imapMaxMIMEParts bounds how many parts of one message BODYSTRUCTURE
// describes and SEARCH looks into, at every level together (Dovecot's
// max_total_mime_parts has the same default). Each part costs a header
// parse and a few KiB of buffers: a 1.4 MB message of 200,000 empty
// parts allocated 1.8 GB per FETCH BODYSTRUCTURE, and a 50 MiB one, which
// SMTP takes from anyone, kept a core busy for minutes. Past the limit a
// multipart or an attached message is described as one opaque part,
// and the multipart being split has no further parts described.
const imapMaxMIMEParts = 10000

// imapBodyStructure describes a message for BODYSTRUCTURE and BODY (RFC
// 9051 section 7.5.2), reading it once, as a stream.
func imapBodyStructure(r io.Reader) imap.BodyStructure {
	br := bufio.NewReader(r)
	h := imapReadHeader(br)
	parts := imapMaxMIMEParts
	return imapPartStructure(h, br, "", 0, &parts)
}

// imapCounter counts the octets and lines that pass through it.
type imapCounter struct{ n, lines int64 }

func (c *imapCounter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.lines += int64(bytes.Count(p, []byte("\n")))
	return len(p), nil
}

// imapPartStructure describes one entity; parent is the media type of the
// multipart it is a part of ("" for a message), since that decides the
// type of a part without a Content-Type. parts is what is left of the
// message's imapMaxMIMEParts.
func imapPartStructure(raw textproto.Header, body io.Reader, parent string, depth int, parts *int) imap.BodyStructure {
	h := gomessage.Header{Header: raw}
	var count imapCounter
	body = io.TeeReader(body, &count)
	drain := func() { _, _ = io.Copy(io.Discard, body) }

	mediaType, params, err := imapContentType(h)
	switch {
	case !h.Has("Content-Type") && parent == "multipart/digest":
		// RFC 2046 section 5.1.5. The section paths (imapOpenMessage)
		// and SEARCH step into such a part as into a message, so
		// BODYSTRUCTURE must describe it as one too: a client that was
		// told text/plain would ask for BODY[n] where BODY[n.1] is.
		mediaType, params = "message/rfc822", nil
	case err != nil || !strings.Contains(mediaType, "/"):
		mediaType, params = "text/plain", nil // RFC 2045 section 5.2
	}
	mediaType = strings.ToLower(mediaType)
	typ, sub, _ := strings.Cut(mediaType, "/")

	if typ == "multipart" && params["boundary"] == "" {
		// No parts can be found in it: as a multipart whose boundary
		// never occurs (below), it is text to a reader, and its
		// sections are its body (imapWriteSection).
		typ, sub, params = "text", "plain", nil
	}
	follow := depth < imapMaxMIMEDepth && *parts > 0
	if typ == "multipart" && follow {
		mp := &imap.BodyStructureMultiPart{Subtype: sub}
		mr := newIMAPMultipart(body, params["boundary"])
		for *parts > 0 {
			p, err := mr.next()
			if err != nil {
				break
			}
			*parts--
			pr := bufio.NewReader(p)
			mp.Children = append(mp.Children, imapPartStructure(imapReadHeader(pr), pr, mediaType, depth+1, parts))
		}
		drain()
		if len(mp.Children) > 0 {
			mp.Extended = &imap.BodyStructureMultiPartExt{Params: imapTextParams(params), Disposition: imapDisposition(h),
				Language: imapLanguage(h), Location: imapText(h.Get("Content-Location"))}
			return mp
		}
		// A multipart without parts (a broken message): go-imap cannot
		// write one, and to a reader it is text.
		typ, sub, params = "text", "plain", nil
	} else if typ == "multipart" || (mediaType == "message/rfc822" || mediaType == "message/global") && !follow {
		// Not followed: an opaque part. A "MESSAGE" "RFC822" part
		// without its envelope, body and line count is a syntax error
		// that breaks the client's parse of the whole response (RFC
		// 9051 section 9, media-message).
		typ, sub, params = "application", "octet-stream", nil
	}

	sp := &imap.BodyStructureSinglePart{
		Type: typ, Subtype: sub, Params: imapTextParams(params),
		ID: imapText(h.Get("Content-Id")), Description: imapText(h.Get("Content-Description")),
		Encoding: imapText(h.Get("Content-Transfer-Encoding")),
		Extended: &imap.BodyStructureSinglePartExt{Disposition: imapDisposition(h),
			Language: imapLanguage(h), Location: imapText(h.Get("Content-Location"))},
	}
	if (mediaType == "message/rfc822" || mediaType == "message/global") && follow {
		br := bufio.NewReader(body)
		inner := imapReadHeader(br)
		sp.MessageRFC822 = &imap.BodyStructureMessageRFC822{
			Envelope:      imapEnvelope(inner),
			BodyStructure: imapPartStructure(inner, br, "", depth+1, parts),
		}
		_, _ = io.Copy(io.Discard, br)
	}
	drain()
	sp.Size = uint32(min(count.n, 1<<32-1))
	if sp.MessageRFC822 != nil {
		sp.MessageRFC822.NumLines = count.lines
	}
	if typ == "text" {
		sp.Text = &imap.BodyStructureText{NumLines: count.lines}
	}
	return sp
}

func imapDisposition(h gomessage.Header) *imap.BodyStructureDisposition {
	d, params, err := imapContentDisposition(h)
	if err != nil || d == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: imapText(d), Params: imapTextParams(params)}
}

func imapLanguage(h gomessage.Header) []string {
	var out []string
	for _, l := range strings.Split(h.Get("Content-Language"), ",") {
		if l = imapText(strings.TrimSpace(l)); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// imapSectionHold bounds the octets of one message's sections that the
// measuring pass keeps, so that a small section (nearly every one a mail
// client asks for) is sent from memory instead of being cut from the
// body a second time, and a large one still costs only buffers.
const imapSectionHold = 1 << 20

// imapCapture keeps what is written to it while the shared room lasts;
// past it, it keeps nothing and gives its share back.
type imapCapture struct {
	buf  []byte
	room *int
	over bool
}

func (c *imapCapture) Write(p []byte) (int, error) {
	switch {
	case c.over:
	case len(p) > *c.room:
		*c.room += len(c.buf)
		c.buf, c.over = nil, true
	default:
		c.buf = append(c.buf, p...)
		*c.room -= len(p)
	}
	return len(p), nil
}

// kept is what was written, or nil if it did not fit.
func (c *imapCapture) kept() []byte {
	if c.over {
		return nil
	}
	if c.buf == nil {
		return []byte{}
	}
	return c.buf
}
