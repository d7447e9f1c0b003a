package frontend_test

import (
	"strings"
	"testing"
	"time"
)

const pop3PreAuthReply = "-ERR login took too long, closing connection"

// A client that does not log in is closed PreAuthTimeout after it
// connected, with a last -ERR, however busy it keeps the connection: the
// idle timer restarts at every command, so without a total limit a
// client sending a command every few minutes held its slot for ever. A
// client that logs in in time is not affected.
func TestPOP3PreAuthTimeout(t *testing.T) {
	const limit = 400 * time.Millisecond
	cfg := pop3TestConfig() // IdleTimeout 10 s
	cfg.PreAuthTimeout = limit
	_, addr := pop3FakeServer(t, cfg)

	t.Run("busy", func(t *testing.T) {
		c := pop3Dial(t, addr)
		begin := time.Now()
		for {
			// USER is a good command that costs nothing and never
			// counts as a bad one.
			r := c.cmd("USER " + pop3User)
			if r == pop3PreAuthReply {
				break
			}
			if r != "+OK send PASS" {
				t.Fatalf("USER: %q", r)
			}
			if time.Since(begin) > 5*time.Second {
				t.Fatalf("still not logged in and not closed after %v (PreAuthTimeout %v)", time.Since(begin), limit)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if d := time.Since(begin); d < limit {
			t.Errorf("closed after %v, before PreAuthTimeout %v", d, limit)
		}
		if rest := c.expectClosed(); rest != "" {
			t.Errorf("after the timeout reply: %q", rest)
		}
	})
	t.Run("silent", func(t *testing.T) {
		c := pop3Dial(t, addr)
		begin := time.Now()
		if r := c.readLine(); r != pop3PreAuthReply {
			t.Fatalf("silent client got %q", r)
		}
		if d := time.Since(begin); d > 5*time.Second {
			t.Errorf("silent client closed after %v", d)
		}
		c.expectClosed()
	})
	t.Run("logged in", func(t *testing.T) {
		c := pop3Dial(t, addr)
		c.login(pop3User, "secret")
		time.Sleep(2 * limit)
		c.ok("STAT")
		c.quit()
	})
}

// CAPA and a bare AUTH before login are answered, but past the first
// four (enough for both before and after STLS) each counts as a bad
// command, so repeating them ends the connection at MaxBadCommands like
// any other useless command.
func TestPOP3RepeatedListingsCountAsBadCommands(t *testing.T) {
	cfg := pop3TestConfig()
	cfg.MaxBadCommands = 3
	_, addr := pop3FakeServer(t, cfg)

	c := pop3Dial(t, addr)
	for _, cmd := range []string{"CAPA", "AUTH", "CAPA", "AUTH", "CAPA", "AUTH"} {
		c.multi(cmd)
	}
	// Listings 5 and 6 counted; the 7th reaches the limit of 3.
	c.multi("CAPA")
	if r := c.readLine(); !strings.HasPrefix(r, "-ERR too many bad commands") {
		t.Fatalf("after 7 listings: %q", r)
	}
	c.expectClosed()

	// After login they are free again.
	c = pop3Dial(t, addr)
	c.login(pop3User, "secret")
	for range 6 {
		c.multi("CAPA")
	}
	c.ok("NOOP")
	c.quit()
}
