package frontend

import (
	"context"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node/nodetest"
)

// markRemoving sets alice@'s mark of a mailbox being removed, as
// node.RemoveMailbox does before it empties a large mailbox, and waits
// until the serving node has it.
func markRemoving(t *testing.T, c *nodetest.Cluster, serving int) {
	t.Helper()
	on := true
	c.Apply(&fsm.MailboxUpdate{Address: "alice@example.com", Removing: &on})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[serving].Barrier(ctx); err != nil {
		t.Fatal(err)
	}
}

// A mailbox being removed is refused with 450 4.2.1 at RCPT, directly
// (a forward to it and others, a list, reaches the others: node
// resolveLocal); a transaction whose RCPT came before the mark
// and whose DATA after it is refused with the same reply (SMTP, one
// mailbox), or per recipient (LMTP), never answered 250.
func TestMailboxBeingRemovedReplies(t *testing.T) {
	c := nodetest.Start(t, 3)
	c.AddMailboxes("pw", "alice@example.com", "bob@example.com")
	c.Apply(&fsm.ForwardAdd{Address: "team@example.com", Targets: []string{"alice@example.com", "bob@example.com"}})
	_, smtpAddr := startServer(t, testConfig(), c.Nodes[1])
	_, lmtpAddr := startServer(t, lmtpConfig(), c.Nodes[1])

	s := dial(t, smtpAddr)
	s.ehlo()
	s.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	s.expect("RCPT TO:<alice@example.com>", 250, "2.0.0")
	l := dial(t, lmtpAddr)
	l.expect("LHLO client.test", 250, "")
	l.expect("MAIL FROM:<s@remote.test>", 250, "")
	l.expect("RCPT TO:<alice@example.com>", 250, "")
	l.expect("RCPT TO:<bob@example.com>", 250, "")

	markRemoving(t, c, 1)
	checkReply(t, "SMTP DATA after the mark", s.data("Subject: late\r\n\r\nlate\r\n"), 450, "4.2.1")
	l.expect("DATA", 354, "")
	l.write("Subject: late\r\n\r\nlate\r\n.\r\n")
	checkReply(t, "LMTP alice", l.read(), 450, "4.2.1")
	checkReply(t, "LMTP bob", l.read(), 250, "2.0.0")

	s.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	s.expect("RCPT TO:<alice@example.com>", 450, "4.2.1")
	s.expect("RCPT TO:<team@example.com>", 250, "2.0.0")
	s.expect("RCPT TO:<bob@example.com>", 250, "2.0.0")
	checkReply(t, "DATA to bob", s.data("Subject: bob\r\n\r\nbob\r\n"), 250, "2.0.0")
}
