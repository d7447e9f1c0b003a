package frontend_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"powermail/node/nodetest"
)

// A client that sends RETR for a large message and then stops reading is
// dropped after WriteTimeout, on a real node: the maildrop lock is given
// back (a new session logs in at once, not after the lease) and the
// DELE it had sent is not committed (RFC 1939 §6).
func TestPOP3StalledRetrReleasesLockAndKeepsDeletions(t *testing.T) {
	c := nodetest.Start(t, 1)
	const box = "stall@example.com"
	c.AddMailboxes("pw", box)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 200_000)
	small := "Subject: small\r\n\r\nx\r\n"
	c.Deliver(0, big, box)
	c.Deliver(0, small, box)
	cfg := pop3TestConfig()
	cfg.WriteTimeout = time.Second
	_, addr := pop3Serve(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), cfg, false)
	cl := pop3Dial(t, addr)
	cl.login(box, "pw")
	cl.ok("DELE 2")
	cl.send("RETR 1") // and read nothing more
	start := time.Now()
	var again *pop3Client
	pop3Eventually(t, "the stalled session's lock given back", func() bool {
		again = pop3Dial(t, addr)
		again.ok("USER " + box)
		if strings.HasPrefix(again.cmd("PASS pw"), "+OK") {
			return true
		}
		again.conn.Close()
		return false
	})
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("lock given back after %v, WriteTimeout is 1s", d)
	}
	if got, want := again.ok("STAT"), fmt.Sprintf("+OK 2 %d", len(big)+len(small)); got != want {
		t.Errorf("STAT after the stalled session %q, want %q", got, want)
	}
	again.quit()
}
