package frontend_test

import (
	"context"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// Sessions of a mailbox disabled or removed after their login: every
// protocol stops them, not only new logins (frontend/DESIGN.md). The
// mailbox is changed with the commands the admin API proposes.

func disableMailbox(c *nodetest.Cluster, addr string, disabled bool) {
	c.Apply(&fsm.MailboxUpdate{Address: addr, Disabled: &disabled})
}

// startRevokePOP3 starts a one-node cluster whose mailboxes boxes
// (password "pw") each hold two messages, and a POP3 server on it that
// checks the login's account before each command; it returns the
// cluster, its node and the server's address.
func startRevokePOP3(t *testing.T, boxes ...string) (*nodetest.Cluster, *node.Node, string) {
	t.Helper()
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw", boxes...)
	for _, s := range []string{"one", "two"} {
		c.Deliver(0, "Subject: "+s+"\r\n\r\n"+s+"\r\n", boxes...)
	}
	n := c.Nodes[0]
	cfg := pop3TestConfig()
	cfg.AccountCheckInterval = time.Millisecond
	_, addr := pop3Serve(t, n, pop3TestAuth(n, true), cfg, false)
	return c, n, addr
}

// pop3DeleteFirst logs user (password "pw") in and marks message 1
// deleted.
func pop3DeleteFirst(t *testing.T, addr, user string) *pop3Client {
	t.Helper()
	c := pop3Dial(t, addr)
	c.login(user, "pw")
	c.ok("DELE 1")
	return c
}

// inboxLen is how many messages addr's INBOX holds on n.
func inboxLen(t *testing.T, n *node.Node, addr string) int {
	t.Helper()
	v, err := n.View(context.Background(), addr, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return len(v.Messages)
}

// wantPOP3Ended fails unless the DELE that pop3DeleteFirst made as ended
// (what) was not committed, while other's was, and ended's old password
// "pw" logs in no more.
func wantPOP3Ended(t *testing.T, n *node.Node, addr, ended, other, what string) {
	t.Helper()
	if got := inboxLen(t, n, ended); got != 2 {
		t.Errorf("%s holds %d messages, want 2: %s was committed", ended, got, what)
	}
	if got := inboxLen(t, n, other); got != 1 {
		t.Errorf("%s holds %d messages, want 1", other, got)
	}
	again := pop3Dial(t, addr)
	again.ok("USER " + ended)
	again.fail("PASS pw", "AUTH")
}

// TestPOP3SessionEndsWhenTheMailboxIsDisabled: a POP3 session of a
// mailbox disabled since its login gets -ERR [AUTH] at its next command
// and is closed, and the deletions it marked are not committed (RFC 1939
// §6: only QUIT of an authorised user enters UPDATE); the maildrop lock
// is given back. A removed mailbox's session ends the same way. Another
// mailbox's session goes on and commits.
func TestPOP3SessionEndsWhenTheMailboxIsDisabled(t *testing.T) {
	const alice, bob, carol = "alice@example.com", "bob@example.com", "carol@example.com"
	c, n, addr := startRevokePOP3(t, alice, bob)
	c.AddMailboxes("pw", carol)

	a := pop3DeleteFirst(t, addr, alice)
	b := pop3DeleteFirst(t, addr, bob)
	removed := pop3Dial(t, addr)
	removed.login(carol, "pw")

	disableMailbox(c, alice, true)
	a.fail("QUIT", "AUTH")
	a.expectClosed()
	b.ok("STAT")
	b.quit()
	c.Apply(&fsm.MailboxRemove{Address: carol})
	removed.fail("STAT", "AUTH")
	removed.expectClosed()

	wantPOP3Ended(t, n, addr, alice, bob, "a disabled session's DELE")

	// Enabled again, the mailbox's maildrop is not held by the session
	// that was stopped.
	disableMailbox(c, alice, false)
	back := pop3Dial(t, addr)
	back.login(alice, "pw")
	back.quit()
}
