package frontend_test

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// ENVELOPE keeps the addresses of a field that Go's strict parser
// refuses as a whole (RFC 9051 §7.5.2): go-imap gave NIL for a From
// whose local part ends in a dot (addresses some mobile carriers hand
// out) and for a To list with one broken entry, so clients listed the
// message without sender or recipients.
func TestIMAPEnvelopeKeepsAddressesOfAFieldGoRefuses(t *testing.T) {
	const user = "envelope@example.com"
	c, addr := soloIMAP(t, user)
	c.Deliver(0, "From: Taro <taro.@example.jp>\r\n"+
		"To: \"Last, First\" <first.last@example.net>, broken@, =?utf-8?q?J=C3=B6rg?= <j..x@example.net>\r\n"+
		"Cc: Team: a@example.net, b@example.net;, c@example.net\r\n"+
		"Subject: env\r\n"+
		"\r\n"+
		"hi\r\n", user)
	r := dialIMAPRaw(t, addr, user)
	r.ok("EXAMINE INBOX")
	r.want("FETCH 1 (ENVELOPE)", "* 1 FETCH",
		`(("Taro" NIL "taro." "example.jp")) (("Taro" NIL "taro." "example.jp")) (("Taro" NIL "taro." "example.jp"))`,
		`(("Last, First" NIL "first.last" "example.net") ("=?utf-8?q?J=C3=B6rg?=" NIL "j..x" "example.net"))`,
		`((NIL NIL "a" "example.net") (NIL NIL "b" "example.net") (NIL NIL "c" "example.net"))`)
}

// An address the lenient reading takes is still text an IMAP string can
// carry: an entry with a control character or octets that are no UTF-8
// in its address is left out, as Go's parser refuses it. A NUL went out
// inside a literal, which may hold none (RFC 9051 §4.3, CHAR8), and
// octets that are no UTF-8 in a quoted string after ENABLE UTF8=ACCEPT,
// which must be UTF-8 (RFC 9051 §9); the field's other entries stay.
func TestIMAPEnvelopeLenientAddressesAreText(t *testing.T) {
	const user = "envtext@example.com"
	c, addr := soloIMAP(t, user)
	c.Deliver(0, "From: Joe <j\x00oe.@example.com>\r\n"+
		"To: \xffa.@example.com, taro.@example.jp, x.@exa\x01mple.net\r\n"+
		"Subject: env\r\n"+
		"\r\n"+
		"hi\r\n", user)
	for _, utf8Accept := range []bool{false, true} {
		r := dialIMAPRaw(t, addr, user)
		if utf8Accept {
			r.ok("ENABLE UTF8=ACCEPT")
		}
		r.ok("EXAMINE INBOX")
		got := strings.Join(r.ok("FETCH 1 (ENVELOPE)"), "\n")
		if strings.ContainsAny(got, "\x00\x01") || !utf8.ValidString(got) {
			t.Errorf("UTF8=ACCEPT %v: ENVELOPE %q has a control character or octets that are no UTF-8", utf8Accept, got)
		}
		if !strings.Contains(got, `((NIL NIL "taro." "example.jp"))`) {
			t.Errorf("UTF8=ACCEPT %v: ENVELOPE %q, want To to keep taro.@example.jp alone", utf8Accept, got)
		}
	}
}
