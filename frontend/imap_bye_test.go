package frontend_test

import (
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// Sessions the server ends on its own say why first: an untagged BYE
// (RFC 9051 §7.1.5) before the connection closes.

// byeCluster is an IMAP server with cfg on a real one-node cluster with
// mailbox user; idle, when not zero, is its autologout.
func byeCluster(t *testing.T, user string, cfg frontend.IMAPConfig, idle time.Duration) string {
	t.Helper()
	c := nodetest.Start(t, 1)
	c.AddMailboxes(imapPassword, user)
	srv := newIMAPTestServer(c.Nodes[0], cfg, true)
	if idle > 0 {
		frontend.SetIMAPIdleTimeoutForTest(srv, idle)
	}
	t.Cleanup(func() { srv.Close() })
	return listenIMAP(t, srv, false)
}

// TestIMAPAutologoutSaysBye: a client silent past PreAuthTimeout before
// login, or past IdleTimeout after it (waiting for a command or in
// IDLE), reads "* BYE" and then the end of the connection.
func TestIMAPAutologoutSaysBye(t *testing.T) {
	user := "sleepy@example.com"
	addr := byeCluster(t, user, frontend.IMAPConfig{PreAuthTimeout: 400 * time.Millisecond}, 400*time.Millisecond)

	anon := dialIMAPRaw(t, addr, "")
	if l := anon.line(); !strings.HasPrefix(l, "* BYE ") {
		t.Fatalf("silent before login: %q, want * BYE", l)
	}
	anon.closed()

	waiting := dialIMAPRaw(t, addr, user)
	waiting.ok("SELECT INBOX")
	if l := waiting.line(); !strings.HasPrefix(l, "* BYE Autologout") {
		t.Fatalf("silent after login: %q, want * BYE Autologout", l)
	}
	waiting.closed()

	idling := dialIMAPRaw(t, addr, user)
	idling.ok("SELECT INBOX")
	idling.send("i IDLE\r\n")
	idling.until("+")
	if l := idling.line(); !strings.HasPrefix(l, "* BYE Autologout") {
		t.Fatalf("silent in IDLE: %q, want * BYE Autologout", l)
	}
	idling.closed()
}
