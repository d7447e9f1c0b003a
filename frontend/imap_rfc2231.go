package frontend

import (
	"maps"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// imap2231Params is params with the RFC 2231 values of field read in
// their charsets. Go's parser decodes extended values (RFC 2231 §4) only
// in UTF-8 and US-ASCII: it drops a whole value in any other charset,
// and joins continuations (§3, §4.1) of one with the octets of their
// percent-encoded sections left raw. A name written as many mailers
// write one in Latin-1 or windows-1252,
//
//	name*=iso-8859-1''caf%E9.pdf
//
// gave an attachment without a name in BODYSTRUCTURE and to SEARCH.
// Here a value
// whose charset imapCharset knows (the table the other charsets of a
// message are read with) is converted, in place of Go's reading. One
// that does not parse leaves the plain parameter of that name, which
// mailers write beside it for readers without RFC 2231, or else nothing:
// Go's reading of it is its continuations joined raw. A value in a
// charset it does not know is added only where Go left none. Octets
// that are no UTF-8 under a label that says UTF-8 or US-ASCII, or names
// a charset not known here, are read as windows-1252, as mailers that
// mislabel Latin-1 mean them (Go keeps them raw).
func imap2231Params(field string, params map[string]string) map[string]string {
	if !strings.Contains(field, "*=") {
		return params // no extended value (RFC 2231's mark is "*=")
	}
	_, rest, _ := strings.Cut(field, ";")
	var out map[string]string // params, copied at the first change
	edit := func() map[string]string {
		if out == nil {
			out = make(map[string]string, len(params)+1)
			maps.Copy(out, params)
		}
		return out
	}
	raw := imapLenientParams(rest)
	plain := make(map[string]string, len(raw)) // read by a name without "*"
	for _, p := range raw {
		plain[p.name] = p.value // one each: imapLenientParams keeps the first
	}
	for name, pieces := range imap2231Pieces(raw) {
		v, converted, ok := imap2231Value(pieces)
		_, goRead := params[name]
		switch {
		case converted && ok, ok && !goRead:
			edit()[name] = v
		case converted:
			if p, found := plain[name]; found {
				edit()[name] = imap2231Words(p)
			} else if goRead {
				delete(edit(), name)
			}
		}
	}
	if out == nil {
		return params
	}
	return out
}

// imap2231Words is a plain value with its RFC 2047 words decoded, as
// go-message decodes the values it reads.
func imap2231Words(v string) string {
	if d, err := (&mime.WordDecoder{}).DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// imap2231Piece is one section of an RFC 2231 value: name*N or name*N*
// (extended: percent-encoded; the first also names the charset).
type imap2231Piece struct {
	n        int
	extended bool
	value    string
}

// imap2231Pieces groups the parameters named name* or name*N[*] by name.
func imap2231Pieces(raw []imapParam) map[string][]imap2231Piece {
	out := map[string][]imap2231Piece{}
	for _, p := range raw {
		base, suffix, ok := strings.Cut(p.name, "*")
		if !ok || base == "" {
			continue
		}
		piece := imap2231Piece{value: p.value}
		switch num, ext := strings.CutSuffix(suffix, "*"); {
		case suffix == "":
			piece.extended = true // name*=: one extended section
		default:
			// Section numbers are decimal digits without a leading 0
			// (RFC 2231 §7: "*0", or "*" then 1-9 then digits); Atoi alone
			// would take "+1".
			if num == "" || len(num) > 3 || strings.Trim(num, "0123456789") != "" ||
				(len(num) > 1 && num[0] == '0') {
				continue
			}
			n, _ := strconv.Atoi(num)
			piece.n, piece.extended = n, ext
		}
		out[base] = append(out[base], piece)
	}
	return out
}

// imap2231Value joins the sections of one value, numbered from 0
// without a gap, decodes the extended ones, and converts the octets
// from the charset that section 0 names (octets that are no UTF-8 under
// a label imapCharset does not convert from are read as windows-1252).
// converted says the octets were converted; ok, that the value parsed.
func imap2231Value(pieces []imap2231Piece) (v string, converted, ok bool) {
	slices.SortFunc(pieces, func(a, b imap2231Piece) int { return a.n - b.n })
	charset := ""
	if p := pieces[0]; p.n == 0 && p.extended {
		charset, _, _ = strings.Cut(p.value, "'")
	}
	enc := imapCharset(charset)
	converted = enc != nil
	var octets strings.Builder
	for i, p := range pieces {
		if p.n != i {
			return "", converted, false // a gap, or one number twice
		}
		v := p.value
		if p.extended {
			if i == 0 {
				// charset'language'octets (RFC 2231 §4)
				parts := strings.SplitN(v, "'", 3)
				if len(parts) != 3 {
					return "", converted, false
				}
				v = parts[2]
			}
			d, err := url.PathUnescape(v)
			if err != nil {
				return "", converted, false
			}
			v = d
		}
		octets.WriteString(v)
	}
	s := octets.String()
	switch {
	case converted:
		d, err := enc.NewDecoder().String(s)
		return d, true, err == nil
	case utf8.ValidString(s):
		return s, false, true
	default:
		// Labelled UTF-8 or US-ASCII, or with a charset not known
		// here, but not UTF-8 throughout: mailers that write Latin-1
		// octets under such a label mean windows-1252, and Go's
		// reading keeps the raw octets.
		return imapUTF8OrWindows1252(s), true, true
	}
}

// imapUTF8OrWindows1252 is s with each octet that starts no valid UTF-8
// sequence read as windows-1252.
func imapUTF8OrWindows1252(s string) string {
	dec := imapCharset("windows-1252").NewDecoder()
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			if d, err := dec.Bytes([]byte{s[0]}); err == nil {
				b.Write(d)
			}
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}
