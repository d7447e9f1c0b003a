package frontend_test

import (
	"slices"
	"strings"
	"testing"

	"powermail/node/nodetest"
)

// TestPOP3AdvertisesExpireNever: the server deletes no message on its
// own, and says so (RFC 2449 §6.7, EXPIRE NEVER), before and after
// login, so that a client that leaves mail on the server knows it stays.
// LOGIN-DELAY is not offered: no delay between logins is enforced.
func TestPOP3AdvertisesExpireNever(t *testing.T) {
	c := nodetest.Start(t, 1)
	const box = "expire@example.com"
	c.AddMailboxes("pw", box)
	cfg := pop3TestConfig()
	cfg.ServerID = c.Nodes[0].ID()
	_, addr := pop3Serve(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), cfg, false)
	cl := pop3Dial(t, addr)
	check := func(when string) {
		t.Helper()
		caps := cl.multiLines("CAPA")
		if !slices.Contains(caps, "EXPIRE NEVER") {
			t.Errorf("CAPA %s: %q lacks EXPIRE NEVER", when, caps)
		}
		for _, c := range caps {
			if strings.HasPrefix(c, "LOGIN-DELAY") {
				t.Errorf("CAPA %s offers %q", when, c)
			}
		}
	}
	check("before login")
	cl.login(box, "pw")
	check("after login")
	cl.quit()
}
