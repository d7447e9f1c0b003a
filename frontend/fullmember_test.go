package frontend

import (
	"context"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node/nodetest"
)

// A list member over its quota at RCPT is left out of the delivery, and
// the envelope sender gets a failure notice (RFC 3464) naming it, with
// status 5.2.2, after the message is stored for the other members: its
// quota bounds what it holds, as Postfix with Dovecot's LMTP bounces
// that member. NOTIFY=NEVER and the null sender get no notice; a list
// all of whose members are full is refused at RCPT (452 4.2.2); over
// LMTP the list's RCPT is answered 250 and the notice is the same. A
// success notice asked for reports the list as expanded.
func TestListMemberOverQuotaIsBouncedToSender(t *testing.T) {
	c := nodetest.Start(t, 3)
	c.AddMailboxes("pw", "alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com",
		"erin@example.com", "frank@example.com", "gina@example.com")
	quota := int64(16)
	for _, box := range []string{"bob@example.com", "erin@example.com"} {
		c.Apply(&fsm.MailboxUpdate{Address: box, QuotaBytes: &quota})
	}
	c.Deliver(0, "Subject: filler\r\n\r\n0123456789abcdef\r\n", "bob@example.com", "erin@example.com")
	c.Apply(&fsm.ForwardAdd{Address: "team@example.com", Targets: []string{"alice@example.com", "bob@example.com"}})
	c.Apply(&fsm.ForwardAdd{Address: "full@example.com", Targets: []string{"bob@example.com", "erin@example.com"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[1].Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	bob, err := c.Nodes[1].State().Mailbox("bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, testConfig(), c.Nodes[1])
	_, lmtpAddr := startServer(t, lmtpConfig(), c.Nodes[1])

	s := dial(t, addr)
	s.ehlo()
	s.expect("MAIL FROM:<carol@example.com> ENVID=QQ271828", 250, "2.0.0")
	s.expect("RCPT TO:<team@example.com> ORCPT=rfc822;Team@example.com", 250, "2.0.0")
	s.expect("RCPT TO:<full@example.com>", 452, "4.2.2")
	checkReply(t, "list with a full member", s.data("Subject: minutes\r\n\r\nAttached.\r\n"), 250, "2.0.0")
	s.expect("MAIL FROM:<dave@example.com>", 250, "2.0.0")
	s.expect("RCPT TO:<team@example.com> NOTIFY=NEVER", 250, "2.0.0")
	checkReply(t, "NOTIFY=NEVER", s.data("Subject: never\r\n\r\nx\r\n"), 250, "2.0.0")
	checkReply(t, "null sender", s.transaction("", []string{"team@example.com"}, "Subject: from nobody\r\n\r\nx\r\n"), 250, "2.0.0")
	s.expect("MAIL FROM:<gina@example.com>", 250, "2.0.0")
	s.expect("RCPT TO:<team@example.com> NOTIFY=SUCCESS,FAILURE", 250, "2.0.0")
	checkReply(t, "NOTIFY=SUCCESS,FAILURE", s.data("Subject: receipt\r\n\r\nx\r\n"), 250, "2.0.0")

	l := dial(t, lmtpAddr)
	l.expect("LHLO client.test", 250, "")
	l.expect("MAIL FROM:<frank@example.com>", 250, "")
	l.expect("RCPT TO:<team@example.com>", 250, "")
	l.expect("DATA", 354, "")
	l.write("Subject: over lmtp\r\n\r\nx\r\n.\r\n")
	checkReply(t, "LMTP list with a full member", l.read(), 250, "2.0.0")

	if got := waitInbox(t, c.Nodes[0], "alice@example.com", 5); len(got) != 5 {
		t.Fatalf("alice holds %d messages, want 5", len(got))
	}
	dsn := waitInbox(t, c.Nodes[0], "carol@example.com", 1)[0]
	for _, want := range []string{
		"Subject: Undelivered Mail Returned to Sender", "multipart/report; report-type=delivery-status",
		"Original-Envelope-Id: QQ271828",
		"Original-Recipient: rfc822; Team@example.com\r\nFinal-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: 5.2.2\r\n",
		"Diagnostic-Code: X-PowerMail; mailbox full",
		"<bob@example.com>: mailbox full", "team@example.com",
		"text/rfc822-headers", "Subject: minutes",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("carol's notice lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "alice@example.com") {
		t.Errorf("carol's notice names the member that took the message:\n%s", dsn)
	}
	dsn = waitInbox(t, c.Nodes[0], "frank@example.com", 1)[0]
	if !strings.Contains(dsn, "Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: 5.2.2\r\n") {
		t.Errorf("frank's notice (LMTP) lacks bob's failure:\n%s", dsn)
	}

	// A list that left a member out was still expanded (RFC 3461
	// §6.2.7.3): the success notice says so, the failure names bob.
	var expanded, failed bool
	for _, n := range waitInbox(t, c.Nodes[0], "gina@example.com", 2) {
		expanded = expanded || strings.Contains(n, "Final-Recipient: rfc822; team@example.com\r\nAction: expanded\r\n")
		failed = failed || strings.Contains(n, "Final-Recipient: rfc822; bob@example.com\r\nAction: failed\r\nStatus: 5.2.2\r\n")
	}
	if !expanded || !failed {
		t.Errorf("gina's notices: team expanded %v, bob failed %v", expanded, failed)
	}

	time.Sleep(time.Second) // any other notice would be in by now
	for box, want := range map[string]int{"carol@example.com": 1, "dave@example.com": 0, "frank@example.com": 1, "gina@example.com": 2, "bob@example.com": 1, "erin@example.com": 1} {
		if got := waitInbox(t, c.Nodes[0], box, want); len(got) != want {
			t.Errorf("%s holds %d messages, want %d", box, len(got), want)
		}
	}
	if now, err := c.Nodes[0].State().Mailbox("bob@example.com"); err != nil || now.UsedBytes != bob.UsedBytes {
		t.Errorf("bob uses %d bytes (%v), want %d as before", now.UsedBytes, err, bob.UsedBytes)
	}
}
