package frontend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// Search answers SEARCH and UID SEARCH (RFC 9051 section 6.4.4) over the
// snapshot. Criteria on flags, UIDs, sequence numbers, sizes and internal
// dates come from the index; a message's body is read only if a header,
// sent-date or text criterion is still undecided for it. Messages expunged
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
	data := &imap.SearchData{}
	var seqs imap.SeqSet
	var uids imap.UIDSet
	for i := range sel.msgs {
		m := &sel.msgs[i]
		if m.gone {
			continue
		}
		c := &imapCandidate{s: s, sel: sel, seq: uint32(i + 1), msg: m}
		ok, err := c.match(criteria)
		if err != nil {
			return nil, s.storeError("search", err, imap.ResponseCodeNonExistent)
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
	if options != nil && options.ReturnSave {
		sel.searchRes = imapSaved(uids, data, kind, options, sel)
	}
	return data, nil
}

// imapCandidate is one message being matched; its body is read at most
// once, on first need.
type imapCandidate struct {
	s   *imapSession
	sel *imapSelected
	seq uint32
	msg *imapMsg

	raw       []byte
	meta      *imapMeta // the cached header, set by loadHeader
	header    textproto.Header
	hasHeader bool
	loaded    bool
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

func (c *imapCandidate) load() error {
	if c.loaded {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.s.ctx, c.s.srv.cfg.TransferTimeout)
	defer cancel()
	b, err := c.s.srv.store.OpenBody(ctx, c.msg.hash)
	if err != nil {
		return fmt.Errorf("open body of uid %d: %w", c.msg.uid, err)
	}
	defer b.Close()
	raw, err := io.ReadAll(io.LimitReader(b, max(b.Size(), 0)))
	if err != nil {
		return fmt.Errorf("read body of uid %d: %w", c.msg.uid, err)
	}
	c.raw = raw
	c.loaded = true
	return nil
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
	if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		mh := mail.Header{Header: gomessage.Header{Header: c.header}}
		sent, err := mh.Date()
		if err != nil || sent.IsZero() || !imapDateIn(sent, cr.SentSince, cr.SentBefore) {
			return false, nil
		}
	}
	if len(cr.Body) == 0 && len(cr.Text) == 0 {
		return true, nil
	}
	if err := c.load(); err != nil {
		return false, err
	}
	for _, t := range cr.Body {
		if !imapTextMatch(c.raw, t, false) {
			return false, nil
		}
	}
	for _, t := range cr.Text {
		if !imapTextMatch(c.raw, t, true) {
			return false, nil
		}
	}
	return true, nil
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

var imapWordDecoder = &mime.WordDecoder{} // stateless: no CharsetReader, stdlib charsets only

// imapHeaderMatch: HEADER key value, FROM, TO, ... A field matches if its
// value (RFC 2047 words decoded where possible) contains value, case
// insensitively; an empty value matches any message with the field.
// values are the field's decoded, lower-cased values
// (imapMeta.loweredValues).
func imapHeaderMatch(values []string, value string) bool {
	if value == "" {
		return len(values) > 0
	}
	needle := strings.ToLower(value)
	for _, v := range values {
		if strings.Contains(v, needle) {
			return true
		}
	}
	return false
}

// imapTextMatch: BODY (withHeader false) and TEXT (true). MIME structure
// is followed and transfer encodings undone; only text parts and nested
// messages are searched, not attachments. A message go-message cannot
// parse is searched as raw bytes.
func imapTextMatch(raw []byte, value string, withHeader bool) bool {
	needle := []byte(strings.ToLower(value))
	if len(needle) == 0 {
		return true
	}
	e, err := gomessage.Read(bytes.NewReader(raw))
	if e == nil || (err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err)) {
		return bytes.Contains(bytes.ToLower(raw), needle)
	}
	return imapEntityMatch(e, needle, withHeader, 0)
}

func imapEntityMatch(e *gomessage.Entity, needle []byte, withHeader bool, depth int) bool {
	if depth > 20 { // nested deeper than any real message: stop
		return false
	}
	if withHeader {
		for f := e.Header.Fields(); f.Next(); {
			v := f.Value()
			if dec, err := imapWordDecoder.DecodeHeader(v); err == nil {
				v = dec
			}
			if bytes.Contains(bytes.ToLower([]byte(f.Key()+": "+v)), needle) {
				return true
			}
		}
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if p == nil || (err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err)) {
				return false
			}
			if imapEntityMatch(p, needle, withHeader, depth+1) {
				return true
			}
		}
	}
	mt, _, _ := e.Header.ContentType()
	switch {
	case mt == "message/rfc822" || mt == "message/global":
		// The nested message's header is part of the outer body.
		inner, err := gomessage.Read(e.Body)
		if inner == nil || (err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err)) {
			return false
		}
		return imapEntityMatch(inner, needle, true, depth+1)
	case mt == "" || strings.HasPrefix(mt, "text/"):
		b, _ := io.ReadAll(e.Body)
		return bytes.Contains(bytes.ToLower(b), needle)
	}
	return false
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
