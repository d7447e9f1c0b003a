package frontend_test

import (
	"strings"
	"testing"
)

// TestIMAPEnvelopeKeepsMessageIDsGoRefuses: ENVELOPE's message-id and
// in-reply-to are those header fields (RFC 9051 section 7.5.2). go-imap
// gives NIL for a Message-ID its strict parser refuses (no "@", no angle
// brackets) and drops every In-Reply-To id from the first it refuses on
// (the RFC 822 form "Your message of ... <id>" that older mailers still
// write): clients that thread by ENVELOPE lost the thread. They are read
// again id by id.
func TestIMAPEnvelopeKeepsMessageIDsGoRefuses(t *testing.T) {
	user := imapNewAddr(t)
	c, addr := soloIMAP(t, user)
	c.Deliver(0, "Message-ID: <abc>\r\nIn-Reply-To: <prev-no-at> <x@y.example>\r\nSubject: odd ids\r\n\r\nbody\r\n", user)
	c.Deliver(0, "Message-ID: a@b.example\r\nIn-Reply-To: Your message of \"Mon, 1 Dec 2025 10:00:00 +0100\"\r\n <old@host.example>\r\nSubject: old style\r\n\r\nbody\r\n", user)
	c.Deliver(0, "Message-ID: <ok@host.example>\r\nIn-Reply-To: <a@host.example> (comment)\r\nSubject: plain\r\n\r\nbody\r\n", user)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	u := r.ok("FETCH 1:3 (ENVELOPE)")
	if len(u) != 3 {
		t.Fatalf("FETCH ENVELOPE: %q", u)
	}
	for i, want := range []string{
		`"<prev-no-at> <x@y.example>" "<abc>"))`,
		`"<old@host.example>" "<a@b.example>"))`,
		`"<a@host.example>" "<ok@host.example>"))`,
	} {
		if !strings.HasSuffix(u[i], want) {
			t.Errorf("ENVELOPE %d: %q, want it to end %q", i+1, u[i], want)
		}
	}
}
