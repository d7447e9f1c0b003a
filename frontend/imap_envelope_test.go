package frontend_test

import (
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// ENVELOPE keeps the addresses of a field that Go's strict parser
// refuses as a whole (RFC 9051 §7.5.2): go-imap gave NIL for a From
// whose local part ends in a dot (addresses some mobile carriers hand
// out) and for a To list with one broken entry, so clients listed the
// message without sender or recipients.
func TestIMAPEnvelopeKeepsAddressesOfAFieldGoRefuses(t *testing.T) {
	c := nodetest.Start(t, 1)
	const user = "envelope@example.com"
	c.AddMailboxes(imapPassword, user)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{PollInterval: time.Second}, true)
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
