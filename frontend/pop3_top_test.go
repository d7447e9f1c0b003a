package frontend_test

import (
	"testing"

	"powermail/node/nodetest"
)

// TOP's line count is any non-negative number (RFC 1939 §7), and one
// larger than the body sends the whole message: clients ask for "all of
// it" with a large count such as 2^32-1. It must not be refused as a bad
// command (which also counts towards closing the connection).
func TestPOP3TopWithHugeLineCount(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw", "top@example.com")
	raw := "Subject: big top\r\n\r\nb1\r\nb2\r\n"
	c.Deliver(0, raw, "top@example.com")
	_, addr := pop3Serve(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), pop3TestConfig(), false)
	cl := pop3Dial(t, addr)
	cl.login("top@example.com", "pw")
	for _, n := range []string{"4294967295", "18446744073709551616", "0000000000002"} {
		if _, got := cl.multi("TOP 1 " + n); got != raw {
			t.Errorf("TOP 1 %s = %q, want the whole message", n, got)
		}
	}
	cl.fail("TOP 1 "+"1234567890123456789012345678901234567890"+"1", "") // over RFC 1939 §3's 40 characters
	cl.quit()
}
