package frontend

import (
	"bytes"
	"io"
	"strings"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/ianaindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// SEARCH compares its keys with text converted to UTF-8 (RFC 9051
// section 6.4.4), so the charsets of RFC 2047 words and of text parts
// (RFC 2046 section 4.1.2) are decoded here, with golang.org/x/text's
// tables. Nothing is registered globally: go-message's CharsetReader
// stays nil, and BINARY keeps a part's own octets (RFC 3516 section 4.2).
// A charset we cannot name is searched as its raw octets, and a damaged
// sequence becomes U+FFFD: neither fails the search.

// imapCharset returns the decoder for a MIME charset name, or nil when
// the text is to be searched as it is: UTF-8 and US-ASCII (already what
// the matcher reads), and names we do not know.
//
// Names are looked up in the WHATWG Encoding Standard's labels first,
// which is what mail readers do: "iso-8859-1" reads as windows-1252
// (mail labelled Latin-1 routinely carries its quotes and "€"), "gb2312"
// as GBK. IANA's aliases ("ibm850", "cp437") come next.
// The WHATWG "replacement" encoding (ISO-2022-KR, HZ) would turn a
// whole part into one U+FFFD: those are searched raw instead.
func imapCharset(name string) encoding.Encoding {
	name = strings.ToLower(strings.Trim(name, " \t\""))
	if i := strings.IndexByte(name, '*'); i >= 0 {
		name = name[:i] // an RFC 2231 language suffix: "iso-8859-1*fr"
	}
	if name == "" || name == "utf-8" || name == "us-ascii" {
		return nil
	}
	enc, err := htmlindex.Get(name)
	if err != nil {
		if enc, err = ianaindex.IANA.Encoding(name); err != nil {
			return nil
		}
	}
	if enc == nil || enc == encoding.Replacement || enc == unicode.UTF8 {
		return nil
	}
	return enc
}

// imapCharsetText is r converted to UTF-8 from charset, as a stream (the
// decoder keeps a few KiB, whatever the part's size); r itself when
// there is nothing to convert or nothing known to convert with.
func imapCharsetText(r io.Reader, charset string) io.Reader {
	enc := imapCharset(charset)
	if enc == nil {
		return r
	}
	return transform.NewReader(r, enc.NewDecoder())
}

// imapWordCharset is the CharsetReader of imapWordDecoder: the decoded
// octets of one RFC 2047 word (RFC 2047 section 2), converted whole, as
// they are short (a word is at most 75 characters; a header is bounded
// by imapMaxHeader). A charset it does not know leaves the octets as
// they are, so that one odd word does not leave the whole field
// undecoded.
func imapWordCharset(charset string, input io.Reader) (io.Reader, error) {
	enc := imapCharset(charset)
	if enc == nil {
		return input, nil
	}
	raw, err := io.ReadAll(input)
	if err != nil {
		return nil, err
	}
	out, err := enc.NewDecoder().Bytes(raw)
	if err != nil {
		return bytes.NewReader(raw), nil
	}
	return bytes.NewReader(out), nil
}
