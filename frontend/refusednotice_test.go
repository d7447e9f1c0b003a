package frontend

import (
	"context"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node/nodetest"
)

// Over SMTP a transaction has one reply after the final dot. When the
// commit stores the message in some mailboxes and refuses others (one
// marked as being removed, one deleted, since RCPT), the 250 stands and
// the sender gets a failure notice (RFC 3464) naming each refused RCPT
// as the client gave it, a forward included, with ENVID and ORCPT
// echoed. The null sender, NOTIFY=NEVER, and a transaction whose every
// mailbox was refused (its reply says so) get no notice.
func TestRefusedAtCommitGetsNotice(t *testing.T) {
	c := nodetest.Start(t, 3)
	c.AddMailboxes("pw", "alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com",
		"erin@example.com", "frank@example.com")
	c.Apply(&fsm.ForwardAdd{Address: "team@example.com", Targets: []string{"alice@example.com", "bob@example.com"}})
	_, addr := startServer(t, testConfig(), c.Nodes[1])

	open := func(mail string, rcpts ...string) *tclient {
		cl := dial(t, addr)
		cl.ehlo()
		cl.expect(mail, 250, "2.0.0")
		for _, r := range rcpts {
			cl.expect(r, 250, "2.0.0")
		}
		return cl
	}
	removing := open("MAIL FROM:<carol@example.com> ENVID=QQ314159",
		"RCPT TO:<alice@example.com> ORCPT=rfc822;Alice@example.com", "RCPT TO:<bob@example.com>",
		"RCPT TO:<team@example.com> NOTIFY=FAILURE,DELAY")
	deleted := open("MAIL FROM:<erin@example.com>", "RCPT TO:<frank@example.com>", "RCPT TO:<bob@example.com>")
	nullSender := open("MAIL FROM:<>", "RCPT TO:<alice@example.com>", "RCPT TO:<bob@example.com>")
	never := open("MAIL FROM:<dave@example.com>", "RCPT TO:<alice@example.com> NOTIFY=NEVER", "RCPT TO:<bob@example.com>")
	allRefused := open("MAIL FROM:<dave@example.com>", "RCPT TO:<alice@example.com>")

	markRemoving(t, c, 1)
	c.Apply(&fsm.MailboxRemove{Address: "frank@example.com"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[1].Barrier(ctx); err != nil {
		t.Fatal(err)
	}

	checkReply(t, "being removed beside bob", removing.data("Subject: quarterly figures\r\n\r\nAttached.\r\n"), 250, "2.0.0")
	checkReply(t, "deleted beside bob", deleted.data("Subject: to frank\r\n\r\nx\r\n"), 250, "2.0.0")
	checkReply(t, "null sender", nullSender.data("Subject: from nobody\r\n\r\nx\r\n"), 250, "2.0.0")
	checkReply(t, "NOTIFY=NEVER", never.data("Subject: never\r\n\r\nx\r\n"), 250, "2.0.0")
	checkReply(t, "only alice", allRefused.data("Subject: only alice\r\n\r\nx\r\n"), 450, "4.2.1")
	if got := waitInbox(t, c.Nodes[0], "bob@example.com", 4); len(got) != 4 {
		t.Fatalf("bob holds %d messages, want 4 (one per 250)", len(got))
	}

	dsn := waitInbox(t, c.Nodes[0], "carol@example.com", 1)[0]
	for _, want := range []string{
		"Subject: Undelivered Mail Returned to Sender", "multipart/report; report-type=delivery-status",
		"Original-Envelope-Id: QQ314159",
		"Original-Recipient: rfc822; Alice@example.com\r\nFinal-Recipient: rfc822; alice@example.com\r\nAction: failed\r\nStatus: 5.2.1\r\n",
		"Final-Recipient: rfc822; team@example.com\r\nAction: failed\r\nStatus: 5.2.1\r\n",
		"Diagnostic-Code: X-PowerMail; ",
		"text/rfc822-headers", "Subject: quarterly figures",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("carol's notice lacks %q:\n%s", want, dsn)
		}
	}
	// Over port 25 a failure returns the header section only, and the
	// notice names the RCPT, not where a forward led.
	for _, not := range []string{"Attached.", "bob@example.com"} {
		if strings.Contains(dsn, not) {
			t.Errorf("carol's notice shows %q:\n%s", not, dsn)
		}
	}
	dsn = waitInbox(t, c.Nodes[0], "erin@example.com", 1)[0]
	for _, want := range []string{
		"Final-Recipient: rfc822; frank@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n", "Subject: to frank",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("erin's notice lacks %q:\n%s", want, dsn)
		}
	}

	time.Sleep(time.Second) // any other notice would be in by now
	for box, want := range map[string]int{"carol@example.com": 1, "erin@example.com": 1, "dave@example.com": 0} {
		if got := waitInbox(t, c.Nodes[0], box, want); len(got) != want {
			t.Errorf("%s holds %d messages, want %d", box, len(got), want)
		}
	}
}
