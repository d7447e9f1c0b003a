package frontend

import (
	"maps"
	"mime"

	"github.com/emersion/go-imap/v2"
)

// A parameter value is kept decoded in the body structure (RFC 2231's
// charset and continuations joined, RFC 2047 words undone: imap_ctype.go),
// so it is UTF-8 whatever form the header wrote it in. A session that
// enabled IMAP4rev2 or UTF8=ACCEPT gets it so (RFC 9051 section 4.3, RFC
// 6855 section 3). Any other session speaks IMAP4rev1, whose quoted
// strings are 7-bit and whose literals should carry 8-bit characters
// only where their charset is identified (RFC 3501 section 4.3), which
// nothing in BODYSTRUCTURE does; the library sent such a value as raw
// UTF-8 in a literal. Such a session gets a non-ASCII value as RFC 2047
// words (imapSevenBitStructure).
//
// RFC 2047 words rather than RFC 2231's extended form (`filename*`,
// `utf-8''%E2%82%AC.pdf`): Gmail and Outlook write attachment names as
// RFC 2047 words in name and filename, and a server that passes
// parameters on as written (Dovecot) sends them so in BODYSTRUCTURE,
// so every client that shows their mail decodes such words there:
// Thunderbird, Apple Mail and Outlook alike. Outlook has long not read
// RFC 2231 over IMAP and POP, and showed such an attachment as
// "Untitled attachment". A value keeps its parameter's name, which a
// client looks up as it stands ("filename", not "filename*"), and a
// value written in continuations in the header is one sequence of
// words here, which no client has to join.

// quotedUTF8 reports whether the session may be sent UTF-8 in strings:
// it enabled IMAP4rev2 or UTF8=ACCEPT, the library's own test for
// writing quoted strings in UTF-8.
func (s *imapSession) quotedUTF8() bool {
	if s.conn == nil {
		return false
	}
	caps := s.conn.EnabledCaps()
	return caps.Has(imap.CapIMAP4rev2) || caps.Has(imap.CapUTF8Accept)
}

// imapSevenBitStructure is bs with every parameter value (of the
// Content-Type and the Content-Disposition, at every level) and every
// Content-Description that is not ASCII written as RFC 2047 words
// (RFC 2047 section 5: a description is *text, where words may stand).
// bs is shared node-wide (imap_cache.go), so it is never changed: the
// parts that change are copied, and bs itself is returned when nothing
// does, as for nearly every message.
func imapSevenBitStructure(bs imap.BodyStructure) imap.BodyStructure {
	out, _ := imapSevenBit(bs)
	return out
}

// imapSevenBit is imapSevenBitStructure, and whether anything changed.
func imapSevenBit(bs imap.BodyStructure) (imap.BodyStructure, bool) {
	switch bs := bs.(type) {
	case *imap.BodyStructureMultiPart:
		var children []imap.BodyStructure
		for i, c := range bs.Children {
			nc, ok := imapSevenBit(c)
			if ok && children == nil {
				children = append(make([]imap.BodyStructure, 0, len(bs.Children)), bs.Children[:i]...)
			}
			if children != nil {
				children = append(children, nc)
			}
		}
		var ext *imap.BodyStructureMultiPartExt
		if bs.Extended != nil {
			params, pok := imapSevenBitParams(bs.Extended.Params)
			disp, dok := imapSevenBitDisposition(bs.Extended.Disposition)
			if pok || dok {
				e := *bs.Extended
				e.Params, e.Disposition = params, disp
				ext = &e
			}
		}
		if children == nil && ext == nil {
			return bs, false
		}
		mp := *bs
		if children != nil {
			mp.Children = children
		}
		if ext != nil {
			mp.Extended = ext
		}
		return &mp, true
	case *imap.BodyStructureSinglePart:
		params, changed := imapSevenBitParams(bs.Params)
		desc, dok := imapSevenBitText(bs.Description)
		changed = changed || dok
		var inner imap.BodyStructure
		iok := false
		if bs.MessageRFC822 != nil {
			inner, iok = imapSevenBit(bs.MessageRFC822.BodyStructure)
			changed = changed || iok
		}
		var ext *imap.BodyStructureSinglePartExt
		if bs.Extended != nil {
			if disp, ok := imapSevenBitDisposition(bs.Extended.Disposition); ok {
				e := *bs.Extended
				e.Disposition = disp
				ext, changed = &e, true
			}
		}
		if !changed {
			return bs, false
		}
		sp := *bs
		sp.Params, sp.Description = params, desc
		if iok {
			m := *bs.MessageRFC822
			m.BodyStructure = inner
			sp.MessageRFC822 = &m
		}
		if ext != nil {
			sp.Extended = ext
		}
		return &sp, true
	}
	return bs, false
}

// imapSevenBitDisposition is d with its parameters made 7-bit, and
// whether they changed; d itself when they did not.
func imapSevenBitDisposition(d *imap.BodyStructureDisposition) (*imap.BodyStructureDisposition, bool) {
	if d == nil {
		return nil, false
	}
	params, ok := imapSevenBitParams(d.Params)
	if !ok {
		return d, false
	}
	nd := *d
	nd.Params = params
	return &nd, true
}

// imapSevenBitParams is params with each value that is not ASCII
// written as RFC 2047 words, and whether any was; params itself when
// none was.
func imapSevenBitParams(params map[string]string) (map[string]string, bool) {
	var out map[string]string
	for k, v := range params {
		if w, ok := imapSevenBitText(v); ok {
			if out == nil {
				out = maps.Clone(params)
			}
			out[k] = w
		}
	}
	if out == nil {
		return params, false
	}
	return out, true
}

// imapSevenBitText is s as RFC 2047 words in UTF-8 ("B" encoding, which
// a decoder reads the same whatever the text holds; Go splits a long
// value into words of at most 75 characters, RFC 2047 section 2) when s
// is not ASCII, and whether it was not. s is text already (imapText).
func imapSevenBitText(s string) (string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mime.BEncoding.Encode("utf-8", s), true
		}
	}
	return s, false
}
