package frontend_test

import (
	"strings"
	"testing"

	"powermail/node/nodetest"
)

// pop3EndlessReply is the last reply to a line that does not end within
// the 64 KiB the server reads past (RFC 2449 §4 bounds command lines).
const pop3EndlessReply = "-ERR line too long, closing connection\r\n"

// TestPOP3EndlessLineIsAnswered: a command line, or an AUTH
// continuation, that goes on past what the server reads past used to
// close the connection with no reply; the client now gets an -ERR
// first, as SMTP (500 5.4.0) and IMAP (BYE [TOOBIG]) answer theirs, in
// every state, while it is still sending. The maildrop lock of a session
// ended that way is given back.
func TestPOP3EndlessLineIsAnswered(t *testing.T) {
	c := nodetest.Start(t, 1)
	const box = "endless@example.com"
	c.AddMailboxes("pw", box)
	c.Deliver(0, "Subject: x\r\n\r\nx\r\n", box)
	cfg := pop3TestConfig()
	cfg.ServerID = c.Nodes[0].ID()
	_, addr := pop3Serve(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), cfg, false)

	endless := func(cl *pop3Client, start string) string {
		t.Helper()
		go func() {
			chunk := []byte(strings.Repeat("y", 32<<10))
			if _, err := cl.conn.Write([]byte(start)); err != nil {
				return
			}
			for range 64 { // 2 MiB, far past what is read
				if _, err := cl.conn.Write(chunk); err != nil {
					return
				}
			}
		}()
		return cl.expectClosed()
	}

	cl := pop3Dial(t, addr)
	if got := endless(cl, "NOOP "); got != pop3EndlessReply {
		t.Errorf("before login: %q, want %q", got, pop3EndlessReply)
	}

	cl = pop3Dial(t, addr)
	if r := cl.cmd("AUTH PLAIN"); r != "+ " {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	if got := endless(cl, ""); got != pop3EndlessReply {
		t.Errorf("as an AUTH response: %q, want %q", got, pop3EndlessReply)
	}

	cl = pop3Dial(t, addr)
	cl.login(box, "pw")
	if got := endless(cl, "LIST "); got != pop3EndlessReply {
		t.Errorf("logged in: %q, want %q", got, pop3EndlessReply)
	}
	// The session ended without QUIT: nothing committed, lock given back.
	cl = pop3Dial(t, addr)
	cl.login(box, "pw")
	if got := cl.ok("STAT"); !strings.HasPrefix(got, "+OK 1 ") {
		t.Errorf("STAT after: %q", got)
	}
	cl.quit()
}
