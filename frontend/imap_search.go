package frontend

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"powermail/node"
)

// Search answers SEARCH and UID SEARCH (RFC 9051 section 6.4.4) over the
// snapshot. Criteria on flags, UIDs, sequence numbers, sizes and internal
// dates come from the index; a message's body is read only if a header,
// sent-date or text criterion is still undecided for it (a sent date is
// the Date: header's, or the internal date without a readable one). Messages expunged
// meanwhile are not returned. A body that cannot be read fails the
// command: a silent non-match would be a wrong answer.
//
// go-imap v2.0.0-beta.8 has no server-side matcher, so this is ours.
func (s *imapSession) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sel, _, err := s.selected()
	if err != nil {
		return nil, err
	}
	data, uids, err := s.search(sel, kind, criteria)
	if options != nil && options.ReturnSave {
		if err != nil {
			sel.searchRes = nil // RFC 5182 section 2.1: a failed SAVE empties "$"
		} else {
			sel.searchRes = imapSaved(uids, data, kind, options, sel)
		}
	}
	return data, err
}

// search matches every message of the selection against criteria, and
// returns the answer and the matching UIDs.
func (s *imapSession) search(sel *imapSelected, kind imapserver.NumKind, criteria *imap.SearchCriteria) (*imap.SearchData, imap.UIDSet, error) {
	if err := s.searchOverLimits(criteria); err != nil {
		return nil, nil, err
	}
	data := &imap.SearchData{}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	var text imapNeedle // the text matcher's buffers, for every message
	for i := range sel.msgs {
		m := &sel.msgs[i]
		if m.gone {
			continue
		}
		c := &imapCandidate{s: s, sel: sel, seq: uint32(i + 1), msg: m, text: &text}
		ok, err := c.match(criteria)
		c.close()
		if err != nil {
			return nil, nil, s.storeError("search", err, imap.ResponseCodeNonExistent)
		}
		if !ok {
			continue
		}
		uids = appendUIDRun(uids, m.uid)
		num := m.uid
		if kind == imapserver.NumKindSeq {
			num = c.seq
			seqs.AddNum(num)
		}
		if data.Min == 0 || num < data.Min {
			data.Min = num
		}
		data.Max = max(data.Max, num)
		data.Count++
	}
	if kind == imapserver.NumKindSeq {
		data.All = seqs
	} else {
		data.All = uids
	}
	return data, uids, nil
}

// imapCandidate is one message being matched; its body is read at most
// once, on first need.
type imapCandidate struct {
	s   *imapSession
	sel *imapSelected
	seq uint32
	msg *imapMsg

	body      node.Body // opened by openBody, closed by close
	cancel    context.CancelFunc
	meta      *imapMeta // the cached header, set by loadHeader
	header    textproto.Header
	hasHeader bool
	text      *imapNeedle // shared by the candidates of one SEARCH
}

// loadHeader parses the header, from the node's header cache when it can.
func (c *imapCandidate) loadHeader() error {
	if c.hasHeader {
		return nil
	}
	m, err := c.s.srv.headerMeta(c.s.ctx, c.msg.hash)
	if err != nil {
		return fmt.Errorf("read header of uid %d: %w", c.msg.uid, err)
	}
	c.meta, c.header = m, m.parsedHeader()
	c.hasHeader = true
	return nil
}

// openBody opens the body for BODY and TEXT criteria, once per message;
// each criterion reads it as a stream from its start.
func (c *imapCandidate) openBody() error {
	if c.body != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, c.s.srv.cfg.TransferTimeout)
	b, err := c.s.srv.store.OpenBody(ctx, c.msg.hash)
	if err != nil {
		cancel()
		return fmt.Errorf("open body of uid %d: %w", c.msg.uid, err)
	}
	c.body, c.cancel = b, cancel
	return nil
}

// close releases the body, if it was opened.
func (c *imapCandidate) close() {
	if c.body != nil {
		_ = c.body.Close()
		c.cancel()
		c.body = nil
	}
}

// textMatch evaluates one BODY (withHeader false) or TEXT criterion. A
// body that cannot be read is an error, not a non-match.
func (c *imapCandidate) textMatch(value string, withHeader bool) (bool, error) {
	c.text.low = c.text.fold(c.text.low[:0], []byte(value))
	if len(c.text.low) == 0 {
		return true, nil
	}
	if err := c.openBody(); err != nil {
		return false, err
	}
	if _, err := c.body.Seek(0, io.SeekStart); err != nil {
		return false, fmt.Errorf("rewind body of uid %d: %w", c.msg.uid, err)
	}
	src := &imapErrReader{r: io.LimitReader(c.body, max(c.body.Size(), 0))}
	ok := c.text.match(src, withHeader)
	if src.err != nil {
		return false, fmt.Errorf("read body of uid %d: %w", c.msg.uid, src.err)
	}
	return ok, nil
}

// match evaluates criteria, cheapest tests first.
func (c *imapCandidate) match(cr *imap.SearchCriteria) (bool, error) {
	m := c.msg
	n := uint32(len(c.sel.msgs))
	for _, set := range cr.SeqNum {
		if !imapSeqContains(set, c.seq, n) {
			return false, nil
		}
	}
	for _, set := range cr.UID {
		if imap.IsSearchRes(set) {
			set = c.sel.searchRes
		}
		if !imapUIDContains(set, m.uid, c.sel.maxUID()) {
			return false, nil
		}
	}
	if !imapDateIn(time.UnixMilli(m.date), cr.Since, cr.Before) {
		return false, nil
	}
	for _, f := range cr.Flag {
		if !m.has(f) {
			return false, nil
		}
	}
	for _, f := range cr.NotFlag {
		if m.has(f) {
			return false, nil
		}
	}
	if cr.Larger > 0 && m.size <= cr.Larger {
		return false, nil
	}
	if cr.Smaller > 0 && m.size >= cr.Smaller {
		return false, nil
	}
	for i := range cr.Not {
		ok, err := c.match(&cr.Not[i])
		if err != nil || ok {
			return false, err
		}
	}
	for i := range cr.Or {
		ok, err := c.match(&cr.Or[i][0])
		if err == nil && !ok {
			ok, err = c.match(&cr.Or[i][1])
		}
		if err != nil || !ok {
			return false, err
		}
	}

	needHeader := len(cr.Header) > 0 || !cr.SentSince.IsZero() || !cr.SentBefore.IsZero()
	if needHeader {
		if err := c.loadHeader(); err != nil {
			return false, err
		}
	}
	for _, hf := range cr.Header {
		if !imapHeaderMatch(c.meta.loweredValues(hf.Key), hf.Value) {
			return false, nil
		}
	}
	if (!cr.SentSince.IsZero() || !cr.SentBefore.IsZero()) &&
		!imapDateIn(c.sentDate(), cr.SentSince, cr.SentBefore) {
		return false, nil
	}
	for _, t := range cr.Body {
		if ok, err := c.textMatch(t, false); err != nil || !ok {
			return false, err
		}
	}
	for _, t := range cr.Text {
		if ok, err := c.textMatch(t, true); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// sentDate is the date SENTBEFORE, SENTON and SENTSINCE compare: the
// Date: header's (RFC 3501 and RFC 9051 section 6.4.4), or the internal
// date when the header is missing or cannot be read. Without a date of
// its own such a message matched none of them, which no user looking
// for a day's mail expects; Dovecot falls back the same way. The header
// must be loaded.
func (c *imapCandidate) sentDate() time.Time {
	mh := mail.Header{Header: gomessage.Header{Header: c.header}}
	if sent, err := mh.Date(); err == nil && !sent.IsZero() {
		return sent
	}
	return time.UnixMilli(c.msg.date)
}

// imapSeqContains: does set hold seq, with "*" as n (the last message)?
func imapSeqContains(set imap.SeqSet, seq, n uint32) bool {
	for _, r := range set {
		if imapRangeHas(r.Start, r.Stop, seq, n) {
			return true
		}
	}
	return false
}

// imapUIDContains: does set hold uid, with "*" as top (the highest UID)?
func imapUIDContains(set imap.UIDSet, uid, top uint32) bool {
	for _, r := range set {
		if imapRangeHas(uint32(r.Start), uint32(r.Stop), uid, top) {
			return true
		}
	}
	return false
}

func imapRangeHas(lo, hi, v, star uint32) bool {
	if lo == 0 {
		lo = star
	}
	if hi == 0 {
		hi = star
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo <= v && v <= hi
}

// imapDateIn compares dates only, disregarding time and timezone (RFC
// 9051 section 6.4.4): t's calendar date in its own zone against the
// criteria's dates. Internal dates are in the server's zone.
func imapDateIn(t, since, before time.Time) bool {
	y, mo, d := t.Date()
	day := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
	if !since.IsZero() && day.Before(imapDay(since)) {
		return false
	}
	if !before.IsZero() && !day.Before(imapDay(before)) {
		return false
	}
	return true
}

func imapDay(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC)
}

// imapWordDecoder decodes RFC 2047 words for SEARCH. It is never
// changed: the standard library decodes UTF-8, US-ASCII and ISO-8859-1
// itself, imapWordCharset every other charset.
var imapWordDecoder = &mime.WordDecoder{CharsetReader: imapWordCharset}

// imapHeaderMatch: HEADER key value, FROM, TO, ... A field matches if its
// value (RFC 2047 words decoded where possible) contains value, case
// insensitively; an empty value matches any message with the field.
// values are the field's decoded, folded values (imap_fold.go)
// (imapMeta.loweredValues).
func imapHeaderMatch(values []string, value string) bool {
	if value == "" {
		return len(values) > 0
	}
	needle := string(imapFold(nil, []byte(value)))
	for _, v := range values {
		if strings.Contains(v, needle) {
			return true
		}
	}
	return false
}

// imapTextMatch: BODY (withHeader false) and TEXT (true), for a needle
// already folded by imapFold. MIME structure is followed
// (imapMultipart, headers read by imapReadHeader, bounded) and transfer
// encodings undone; only text parts and nested messages are searched,
// not attachments. The message is read once, as a stream: a 50 MiB
// message costs a few buffers, not its size (and three times it, as
// when it was read whole and lower-cased).
func imapTextMatch(r io.Reader, needle []byte, withHeader bool) bool {
	return (&imapNeedle{low: needle}).match(r, withHeader)
}

// imapNeedle is a BODY or TEXT key, folded by imapFold, with the
// matcher's read and window buffers, which one SEARCH reuses for every
// message (allocated afresh they were 96 KiB per message and key).
type imapNeedle struct {
	low      []byte
	raw, win []byte
	folder   *imapFolder // made on first use
	parts    int         // what is left of the message's imapMaxMIMEParts
}

// fold appends s folded to dst with nd's folder.
func (nd *imapNeedle) fold(dst, s []byte) []byte {
	if nd.folder == nil {
		nd.folder = newIMAPFolder()
	}
	return nd.folder.fold(dst, s)
}

// match is imapTextMatch for nd.low, in nd's buffers.
func (nd *imapNeedle) match(r io.Reader, withHeader bool) bool {
	br := bufio.NewReader(r)
	nd.parts = imapMaxMIMEParts
	return nd.entity(imapReadHeader(br), br, withHeader, "", 0)
}

// entity matches one entity; parent is the media type of the multipart
// it is a part of ("" for a message).
func (nd *imapNeedle) entity(h textproto.Header, body io.Reader, withHeader bool, parent string, depth int) bool {
	if depth > imapMaxMIMEDepth { // nested deeper than any real message: stop
		return false
	}
	if withHeader {
		var line []byte
		for f := h.Fields(); f.Next(); {
			v := f.Value()
			if dec, err := imapWordDecoder.DecodeHeader(v); err == nil {
				v = dec
			}
			line = nd.fold(line[:0], []byte(f.Key()+": "+v))
			if bytes.Contains(line, nd.low) {
				return true
			}
		}
	}
	mh := gomessage.Header{Header: h}
	mt, params, err := imapContentType(mh)
	if err != nil || !strings.Contains(mt, "/") {
		// Unreadable: text/plain, as BODYSTRUCTURE describes it
		// (imapPartStructure, RFC 2045 §5.2), not the raw field.
		mt, params = "text/plain", nil
	}
	mt = strings.ToLower(mt)
	if !mh.Has("Content-Type") && parent == "multipart/digest" {
		// A message (RFC 2046 section 5.1.5): its parts are decoded and
		// its MIME structure followed, not searched as raw text.
		mt = "message/rfc822"
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] == "":
		// Described as text (imapPartStructure), and searched so.
		return nd.contains(body)
	case strings.HasPrefix(mt, "multipart/"):
		mr := newIMAPMultipart(body, params["boundary"])
		// A multipart without parts is described as text, all of it
		// its preamble: that is searched, and counts only if no part
		// follows.
		inPreamble := nd.contains(mr.cur)
		for first := true; ; first = false {
			if nd.parts <= 0 {
				return false // as far as BODYSTRUCTURE describes
			}
			p, err := mr.next()
			if err != nil {
				return first && inPreamble
			}
			nd.parts--
			pr := bufio.NewReader(p)
			if nd.entity(imapReadHeader(pr), pr, withHeader, mt, depth+1) {
				return true
			}
		}
	case mt == "message/rfc822" || mt == "message/global":
		// The nested message's header is part of the outer body.
		br := bufio.NewReader(imapDecodedBody(mh, body))
		return nd.entity(imapReadHeader(br), br, true, "", depth+1)
	case mt == "" || strings.HasPrefix(mt, "text/"):
		return nd.contains(imapDecodedBody(mh, body))
	}
	return false
}

// imapDecodedBody is body with its transfer encoding undone and, for a
// text part, its charset converted to UTF-8 (RFC 9051 section 6.4.4).
// go-message undoes the encoding and knows UTF-8 and US-ASCII; any other
// charset it reports unknown, with the body decoded but not converted,
// and imapCharsetText converts it, as it converts the charset of a
// Content-Type only the lenient reading parses. An encoding go-message
// does not know is searched as it is, and so is a charset neither knows.
func imapDecodedBody(h gomessage.Header, body io.Reader) io.Reader {
	e, err := gomessage.New(h, body)
	if e == nil {
		return body
	}
	if err != nil && gomessage.IsUnknownCharset(err) { // IsUnknownCharset allocates
		_, params, _ := imapContentType(h)
		return imapCharsetText(e.Body, params["charset"])
	}
	if err == nil {
		// go-message saw no charset in a Content-Type it could not
		// parse; the lenient reading may find one (imap_ctype.go).
		if _, _, perr := h.ContentType(); perr != nil {
			if _, params, _ := imapContentType(h); params["charset"] != "" {
				return imapCharsetText(e.Body, params["charset"])
			}
		}
	}
	return e.Body
}

// imapReaderContains reports whether r, folded, holds needle. It
// reads in chunks and keeps the last len(needle)-1 octets of each for a
// match across the cut; a rune cut by a read waits for the next one, so
// the text is folded as if whole. A decoding error (bad base64 in
// the wild) ends the text there.
func imapReaderContains(r io.Reader, needle []byte) bool {
	return (&imapNeedle{low: needle}).contains(r)
}

// contains is imapReaderContains for nd.low, in nd's buffers.
func (nd *imapNeedle) contains(r io.Reader) bool {
	needle := nd.low
	if nd.raw == nil {
		nd.raw = make([]byte, 32<<10)
	}
	if c := 2*len(nd.raw) + len(needle); cap(nd.win) < c {
		nd.win = make([]byte, 0, c)
	}
	raw, win := nd.raw, nd.win[:0]
	defer func() { nd.win = win[:0] }() // keep what it grew to
	// have: octets of a cut rune carried to the front of raw
	have := 0
	for {
		n, err := r.Read(raw[have:])
		n += have
		end := n
		if err == nil {
			end = imapFoldCut(raw[:n], n == len(raw))
		}
		win = nd.fold(win, raw[:end])
		if bytes.Contains(win, needle) {
			return true
		}
		if k := len(needle) - 1; len(win) > k {
			win = win[:copy(win, win[len(win)-k:])]
		}
		have = copy(raw, raw[end:n])
		if err != nil {
			return false
		}
	}
}

// imapRuneCut is the length of b without a UTF-8 sequence cut off at its
// end.
func imapRuneCut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// imapSaved is what SEARCH RETURN (SAVE) keeps as "$" (RFC 5182 section
// 2.1): all matches, unless MIN or MAX is asked for without ALL; then only
// the minimum and/or maximum.
func imapSaved(uids imap.UIDSet, data *imap.SearchData, kind imapserver.NumKind, o *imap.SearchOptions, sel *imapSelected) imap.UIDSet {
	if o.ReturnAll || !(o.ReturnMin || o.ReturnMax) || data.Count == 0 {
		return uids
	}
	uid := func(num uint32) uint32 {
		if kind == imapserver.NumKindSeq {
			return sel.msgs[num-1].uid
		}
		return num
	}
	var out imap.UIDSet
	if o.ReturnMin {
		out = appendUIDRun(out, uid(data.Min))
	}
	if o.ReturnMax && data.Max != data.Min {
		out = appendUIDRun(out, uid(data.Max))
	}
	return out
}
