package frontend

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// TestIMAPCharsetNames: the labels mail uses find a decoder; UTF-8,
// US-ASCII, the WHATWG "replacement" charsets and names nobody knows
// find none (their text is searched as it is).
func TestIMAPCharsetNames(t *testing.T) {
	for _, name := range []string{"ISO-8859-1", "iso-8859-15", " \"Windows-1252\" ", "cp1252", "latin1", "KOI8-R",
		"koi8-u", "ISO-2022-JP", "gb2312", "GBK", "gb18030", "big5", "shift_jis", "euc-jp", "euc-kr",
		"ks_c_5601-1987", "utf-16", "ibm850", "iso-8859-2*pl", "utf8", "macintosh"} {
		enc := imapCharset(name)
		if enc == nil && name != "utf8" {
			t.Errorf("%q: no decoder", name)
		}
		if enc != nil && name == "utf8" {
			t.Errorf("%q: a decoder for UTF-8", name)
		}
	}
	for _, name := range []string{"", "utf-8", "UTF-8", "us-ascii", "x-no-such-charset", "iso-2022-kr", "hz-gb-2312", "unicode-1-1-utf-7"} {
		if enc := imapCharset(name); enc != nil {
			t.Errorf("%q: decoder %v, want none", name, enc)
		}
	}
}

// TestIMAPCharsetTextStreams: a text part converted as a stream, in reads
// of any size, is the part converted whole, for charsets whose decoder
// keeps state across reads (ISO-2022-JP's shifts, multi-octet
// sequences) and on damaged input; a needle in the converted text is
// found by the matcher.
func TestIMAPCharsetTextStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "B", " ", "\r\n", "\x1b$B", "\x1b(B", "\x1b(J", "$3$s", "\xc4\xe3", "\xa4\xa2",
		"\x82\xa0", "\xf0\xd2", "\xe9", "\x80", "\xff", "\x00", "~{", "+-"}
	for _, cs := range []string{"iso-8859-1", "koi8-r", "iso-2022-jp", "gb2312", "gb18030", "big5", "shift_jis",
		"euc-jp", "euc-kr", "utf-16le", "ibm850", "x-unknown"} {
		for i := range 40 {
			var raw strings.Builder
			for n := rng.IntN(20 << 10); raw.Len() < n; {
				raw.WriteString(pieces[rng.IntN(len(pieces))])
			}
			in := []byte(raw.String())
			want := in
			if enc := imapCharset(cs); enc != nil {
				var err error
				if want, err = enc.NewDecoder().Bytes(in); err != nil {
					t.Fatalf("%s: whole: %v", cs, err)
				}
			}
			var r io.Reader = bytes.NewReader(in)
			if i%4 == 0 {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(imapCharsetText(r, cs))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s, case %d: streamed %d octets (%v), whole %d", cs, i, len(got), err, len(want))
			}
			if len(want) == 0 {
				continue
			}
			runes := []rune(string(want))
			at := rng.IntN(len(runes))
			needle := imapFold(nil, []byte(string(runes[at:min(len(runes), at+1+rng.IntN(8))])))
			if !imapReaderContains(imapCharsetText(bytes.NewReader(in), cs), needle) {
				t.Fatalf("%s, case %d: %q not found in the converted text", cs, i, needle)
			}
		}
	}
}

// TestIMAPWordCharsets: RFC 2047 words in any charset are decoded, and a
// word in a charset nobody knows keeps its octets without leaving its
// neighbours undecoded.
func TestIMAPWordCharsets(t *testing.T) {
	for in, want := range map[string]string{
		"=?ISO-8859-15?Q?caf=E9_=A4?=":                           "café €",
		"=?windows-1252?Q?=93quoted=94?=":                        "“quoted”",
		"=?KOI8-R?B?6dfBziDwxdTSz9c=?= <i@example.org>":          "Иван Петров <i@example.org>",
		"=?iso-2022-jp?B?GyRCRWw1fiROMnE1RBsoQg==?=":             "東京の会議",
		"=?x-unknown?Q?na=C3=AFve?= =?UTF-8?Q?caf=C3=A9?=":       "naïvecafé",
		"=?gb2312?B?xOO6ww==?= and =?iso-8859-1*fr?Q?d=E9j=E0?=": "你好 and déjà",
		"=?utf-8?B?bad base64?= =?iso-8859-2?Q?=B1?=":            "=?utf-8?B?bad base64?= ą",
	} {
		got, err := imapWordDecoder.DecodeHeader(in)
		if err != nil || got != want {
			t.Errorf("%q: %q (%v), want %q", in, got, err, want)
		}
	}
}
