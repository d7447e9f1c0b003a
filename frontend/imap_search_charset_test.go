package frontend_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// The messages of testIMAPSearchCharsets, one per way a mail client
// writes "café", "Grüße" or "Привет" (octets of other charsets are
// written out, so that the test does not trust the decoder it checks).
var imapCharsetMsgs = []string{
	// 1: quoted-printable ISO-8859-1.
	"From: a@example.org\r\nSubject: latin1 qp\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Le caf=E9 est chaud. Gr=FC=DFe aus M=FCnchen.\r\n",
	// 2: base64 UTF-8.
	"From: b@example.org\r\nSubject: utf8 base64\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"U2Now7ZuZSBHcsO8w59lIGF1cyBLw7Zsbg0K\r\n",
	// 3: encoded words: Q in ISO-8859-15 and windows-1252, B in UTF-8,
	// KOI8-R and ISO-2022-JP.
	"From: =?windows-1252?Q?Ren=E9_=93quoted=94?= <rene@example.org>\r\n" +
		"To: =?KOI8-R?B?6dfBziDwxdTSz9c=?= <ivan@example.org>\r\n" +
		"Subject: =?ISO-8859-15?Q?Prix_en_=A4_au_caf=E9?= =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n" +
		"X-Meeting: =?ISO-2022-JP?B?GyRCRWw1fiROMnE1RBsoQg==?=\r\n" +
		"\r\nplain ascii body\r\n",
	// 4: a multipart whose text part is 8-bit KOI8-R, with an HTML
	// part in GB2312 and a plain part in ISO-2022-JP.
	"From: d@example.org\r\nSubject: multipart koi8\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"k\"\r\n\r\n" +
		"--k\r\nContent-Type: text/plain; charset=\"koi8-r\"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"\xf0\xd2\xc9\xd7\xc5\xd4 \xc9\xda \xed\xcf\xd3\xcb\xd7\xd9\r\n" +
		"--k\r\nContent-Type: text/html; charset=GB2312\r\n\r\n<p>\xc4\xe3\xba\xc3\xca\xc0\xbd\xe7</p>\r\n" +
		"--k\r\nContent-Type: text/plain; charset=iso-2022-jp\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" +
		"\x1b$B$3$s$K$A$O@$3&\x1b(B\r\n" +
		"--k--\r\n",
	// 5: a charset nobody knows, and an encoded word in it: searched as
	// the octets they are.
	"From: e@example.org\r\nSubject: =?x-no-such-charset?Q?raw_na=C3=AFve?=\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
		"unknowable charset, na\xc3\xafve octets\r\n",
	// 6: plain ASCII, no accents: "café" is not "cafe".
	"From: f@example.org\r\nSubject: ascii cafe\r\n\r\nthe cafe is closed, grusse\r\n",
	// 7: damaged: bad base64 and an ISO-2022-JP escape that goes
	// nowhere; the search must still answer.
	"From: g@example.org\r\nSubject: damaged\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=d\r\n\r\n" +
		"--d\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\nbroken \x1b$B\xff\xfe\x1b(\r\n" +
		"--d\r\nContent-Type: text/plain; charset=windows-1252\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		"!!!not*base64***\r\n" +
		"--d--\r\n",
	// 8: written decomposed (as macOS does), with a ligature and a
	// Greek omega; the search keys above are written otherwise.
	"From: h@example.org\r\nSubject: forms\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n\r\n" +
		"Mai\u0302tre d\u2019\uFB01le, o\uFB03ce, \u03c9 ohms\r\n",
}

// testIMAPSearchCharsets: SEARCH compares its keys with the decoded
// text, in UTF-8 (RFC 9051 section 6.4.4): RFC 2047 words in headers
// whatever their charset, text parts after their transfer encoding is
// undone and their charset converted. A charset the server does not
// know is searched as its raw octets; damage never fails the command.
func testIMAPSearchCharsets(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	for _, m := range imapCharsetMsgs {
		b.deliver(t, 0, m, user)
	}
	c := dialIMAP(t, b, 1, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	hdr := func(k, v string) imap.SearchCriteria {
		return imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: k, Value: v}}}
	}
	cases := []searchCase{
		{"BODY café", imap.SearchCriteria{Body: []string{"café"}}, []uint32{1}},
		{"BODY CAFÉ", imap.SearchCriteria{Body: []string{"CAFÉ"}}, []uint32{1}},
		{"BODY cafe", imap.SearchCriteria{Body: []string{"cafe"}}, []uint32{6}},
		{"BODY Grüße", imap.SearchCriteria{Body: []string{"Grüße"}}, []uint32{1, 2}},
		{"BODY MÜNCHEN", imap.SearchCriteria{Body: []string{"MÜNCHEN"}}, []uint32{1}},
		{"TEXT köln", imap.SearchCriteria{Text: []string{"köln"}}, []uint32{2, 3}},
		{"SUBJECT café", hdr("Subject", "café"), []uint32{3}},
		{"SUBJECT €", hdr("Subject", "prix en €"), []uint32{3}},
		{"SUBJECT GRÜSSE finds Grüße (full folding)", hdr("Subject", "GRÜSSE"), []uint32{3}},
		{"BODY GRÜSSE finds Grüße (full folding)", imap.SearchCriteria{Body: []string{"GRÜSSE"}}, []uint32{1, 2}},
		{"BODY café decomposed finds it composed", imap.SearchCriteria{Body: []string{"cafe\u0301"}}, []uint32{1}},
		{"BODY café composed finds it decomposed", imap.SearchCriteria{Body: []string{"Maître"}}, []uint32{8}},
		{"BODY ligature", imap.SearchCriteria{Body: []string{"ﬁle"}}, []uint32{8}},
		{"BODY fi finds the ligature", imap.SearchCriteria{Body: []string{"OFFICE"}}, []uint32{8}},
		{"BODY ohm sign", imap.SearchCriteria{Body: []string{"\u2126"}}, []uint32{8}},
		{"BODY maitre does not find maître", imap.SearchCriteria{Body: []string{"maitre"}}, nil},
		{"SUBJECT grüße aus (B)", hdr("Subject", "grüße aus"), []uint32{3}},
		{"FROM René", hdr("From", "rené “quoted”"), []uint32{3}},
		{"TO Иван", hdr("To", "иван петров"), []uint32{3}},
		{"HEADER X-Meeting", hdr("X-Meeting", "東京の会議"), []uint32{3}},
		{"TEXT in a header", imap.SearchCriteria{Text: []string{"ПЕТРОВ"}}, []uint32{3}},
		{"BODY KOI8-R", imap.SearchCriteria{Body: []string{"привет из москвы"}}, []uint32{4}},
		{"BODY KOI8-R, upper case", imap.SearchCriteria{Body: []string{"МОСКВЫ"}}, []uint32{4}},
		{"BODY GB2312", imap.SearchCriteria{Body: []string{"你好世界"}}, []uint32{4}},
		{"BODY ISO-2022-JP", imap.SearchCriteria{Body: []string{"こんにちは"}}, []uint32{4}},
		{"BODY unknown charset", imap.SearchCriteria{Body: []string{"naïve octets"}}, []uint32{5}},
		{"SUBJECT unknown charset", hdr("Subject", "raw naïve"), []uint32{5}},
		{"BODY damaged", imap.SearchCriteria{Body: []string{"broken"}}, []uint32{7}},
		{"BODY nowhere", imap.SearchCriteria{Body: []string{"zzz-nowhere"}}, nil},
	}
	wantSearches(t, c, cases)

	// CHARSET, spoken raw: UTF-8 and US-ASCII are searched, any other
	// is refused with the list of those that are (RFC 9051 section 7.1).
	r := dialIMAPRaw(t, b.server(2), user)
	r.ok("SELECT INBOX")
	r.want("SEARCH CHARSET UTF-8 BODY \"caf\xc3\xa9\"", "* SEARCH 1")
	r.want("SEARCH CHARSET utf-8 SUBJECT \"CAF\xc3\x89\"", "* SEARCH 3")
	r.want("SEARCH CHARSET US-ASCII BODY grusse", "* SEARCH 6")
	r.want("UID SEARCH RETURN (COUNT) CHARSET UTF-8 TEXT \"\xd0\xbc\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\"", "* ESEARCH", "COUNT 1")
	for _, cs := range []string{"ISO-8859-1", "KOI8-R", "x-unknown"} {
		u, tagged := r.cmd("SEARCH CHARSET " + cs + " BODY cafe")
		if !strings.HasPrefix(tagged, "NO [BADCHARSET (US-ASCII UTF-8)]") || len(u) > 0 {
			t.Errorf("SEARCH CHARSET %s: %q %q, want NO [BADCHARSET (US-ASCII UTF-8)]", cs, u, tagged)
		}
	}
	// Refused before its synchronizing literal is sent (RFC 9051
	// section 7.5): the client sends no literal and goes on.
	r.send("lit SEARCH CHARSET ISO-8859-1 BODY {4}\r\n")
	if u, tagged := r.tagged("lit"); !strings.HasPrefix(tagged, "NO [BADCHARSET (US-ASCII UTF-8)]") || len(u) > 0 {
		t.Errorf("SEARCH CHARSET ISO-8859-1 with a literal: %q %q", u, tagged)
	}
	r.want("SEARCH BODY cafe", "* SEARCH 6")
}

// testIMAPSearchLongMarkRun: a header value and a key with a letter
// followed by many combining marks (anyone can send such a Subject) are
// folded and searched; SEARCH answers instead of spinning.
func testIMAPSearchLongMarkRun(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	marks := strings.Repeat("\u0344", 12)
	b.deliver(t, 0, "From: a@example.org\r\nSubject: mark"+marks+" run\r\n\r\nbody a"+marks+"\r\n", user)
	r := dialIMAPRaw(t, b.server(0), user)
	r.ok("SELECT INBOX")
	r.want("SEARCH SUBJECT run", "* SEARCH 1")
	r.want("SEARCH CHARSET UTF-8 BODY \"a"+marks+"\"", "* SEARCH 1")
}
