package frontend

import (
	"maps"
	"mime"
	"strings"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
)

// imapContentType is h's Content-Type as go-message's Header.ContentType
// gives it ("text/plain" when there is none), but read as mail readers
// read it when a parameter breaks RFC 2045 §5.1's grammar. Go's parser
// refuses the whole field then, and go-message hands back the raw field
// as the type: a multipart whose boundary has an unquoted "=" (which
// RFC 2046 §5.1.1 warns senders about, as they forget to quote it), an
// attachment named "name=Scan 2024.pdf" (scanners write such names), a
// doubled ";". Every such part was text/plain to BODYSTRUCTURE,
// sections and SEARCH alike: a message's parts and its attachments'
// names were lost. Here the media type is kept and so is every
// parameter that can be read (imapLenientParams). BODYSTRUCTURE,
// sections and SEARCH all read a part's type through this, so they
// agree on its parts.
func imapContentType(h gomessage.Header) (string, map[string]string, error) {
	return imapMediaType(h.Get("Content-Type"), h.ContentType)
}

// imapContentDisposition is imapContentType for Content-Disposition
// (RFC 2183), whose parameters are written as carelessly.
func imapContentDisposition(h gomessage.Header) (string, map[string]string, error) {
	return imapMediaType(h.Get("Content-Disposition"), h.ContentDisposition)
}

// imapMediaType is parse's reading of field, read leniently where parse
// refuses it, with the RFC 2231 values in other charsets than UTF-8
// that Go's parser leaves out (imap2231Params).
func imapMediaType(field string, parse func() (string, map[string]string, error)) (string, map[string]string, error) {
	t, params, err := parse()
	if err != nil {
		if t, params, err = imapLenientMediaType(field, err); err != nil {
			return t, params, err
		}
	}
	return t, imap2231Params(field, params), nil
}

// imapLenientMediaType reads v, which Go's parser refused with err.
// Only a value whose type Go reads, alone, is read again: its parameters
// were the trouble (malformed, or a name given twice with two values,
// as some mailers write charset). A type that is itself malformed
// stands refused, as go-message gave it.
func imapLenientMediaType(v string, err error) (string, map[string]string, error) {
	base, rest, _ := strings.Cut(v, ";")
	t, _, perr := mime.ParseMediaType(base)
	if perr != nil || t == "" {
		return v, nil, err
	}
	raw := imapLenientParams(rest)
	// Written again with every value quoted, the parameters go through
	// Go's parser after all, which joins RFC 2231 continuations and
	// decodes their charsets; failing that, they are taken as read.
	var b strings.Builder
	b.WriteString(t)
	for _, p := range raw {
		b.WriteString("; ")
		b.WriteString(p.name)
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(p.value))
		b.WriteByte('"')
	}
	params, perr2 := map[string]string(nil), error(nil)
	if _, params, perr2 = mime.ParseMediaType(b.String()); perr2 != nil {
		params = make(map[string]string, len(raw))
		for _, p := range raw {
			params[p.name] = p.value
		}
	}
	// RFC 2047 words in a value, as go-message decodes them.
	dec := mime.WordDecoder{}
	for k, v := range params {
		if d, err := dec.DecodeHeader(v); err == nil {
			params[k] = d
		}
	}
	return t, params, nil
}

type imapParam struct{ name, value string }

// imapLenientParams splits the parameters after a media type as a
// lenient reader does: by ";" outside quoted strings, each "name=value"
// with the value quoted (backslash escapes undone) or else everything
// up to the next ";", surrounding space and a trailing comment trimmed. A piece without "=",
// or with a name that is no RFC 2045 token, is skipped; of names given
// twice (compared without case) the first is kept, as Go keeps none.
func imapLenientParams(s string) []imapParam {
	var out []imapParam
	seen := map[string]bool{}
	for {
		s = strings.TrimLeft(s, " \t\r\n;")
		i := strings.IndexAny(s, "=;")
		if i < 0 {
			return out // nothing, or a last piece without "="
		}
		if s[i] == ';' {
			s = s[i+1:] // a piece without "="
			continue
		}
		name := strings.ToLower(strings.TrimSpace(s[:i]))
		var value string
		value, s = imapParamValue(strings.TrimLeft(s[i+1:], " \t\r\n"))
		if !imapIsToken(name) || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, imapParam{name, value})
	}
}

// imapParamValue reads one value from the start of s and returns it and
// what follows its ";".
func imapParamValue(s string) (value, rest string) {
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		rest = s[min(i+1, len(s)):]
		if _, after, ok := strings.Cut(rest, ";"); ok {
			return b.String(), after
		}
		return b.String(), ""
	}
	value, rest, _ = strings.Cut(s, ";")
	value = strings.TrimSpace(value)
	if i := strings.LastIndex(value, " ("); i > 0 && strings.HasSuffix(value, ")") {
		// A comment after the value, as in RFC 2045 §5.1's own example
		// "charset=us-ascii (Plain text)"; a "(" inside a name that
		// goes on after its ")" ("Scan (1).pdf") is kept.
		value = strings.TrimSpace(value[:i])
	}
	return value, rest
}

// imapIsToken reports whether s is an RFC 2045 token: printable ASCII
// without space or tspecials ("*" included, for RFC 2231 names).
func imapIsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// imapText is s as an IMAP string can carry it in BODYSTRUCTURE, which
// writes header text as it stands: control characters but the tab
// dropped (a literal holds no NUL, RFC 9051 §4.3; a quoted string no
// CR or LF) and octets that are no UTF-8 made U+FFFD (a quoted string
// after UTF8=ACCEPT is UTF-8, RFC 9051 §9). Go's parser takes both in a
// quoted parameter value, and RFC 2231's %00 makes a NUL.
func imapText(s string) string {
	bad := func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }
	if utf8.ValidString(s) && !strings.ContainsFunc(s, bad) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if bad(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// imapTextParams is params with imapText applied to each value (names
// are tokens), or params itself when every value is text already.
func imapTextParams(params map[string]string) map[string]string {
	var out map[string]string
	for k, v := range params {
		if t := imapText(v); t != v {
			if out == nil {
				out = maps.Clone(params)
			}
			out[k] = t
		}
	}
	if out == nil {
		return params
	}
	return out
}
