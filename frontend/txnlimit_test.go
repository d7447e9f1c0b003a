package frontend

import (
	"fmt"
	"testing"

	"powermail/fsm"
	"powermail/node/nodetest"
)

// One commit names at most MaxMessageExternal external targets (and
// MaxMessageMailboxes mailboxes); the state machine refuses a larger
// one whatever happens, so a transaction whose RCPTs expand past it would
// get 451 after DATA on every retry until it bounced for all of its
// recipients. The RCPT that would cross the limit gets 452 4.5.3 instead
// (RFC 5321 §4.5.3.1.10: the client sends it in another transaction), and
// the rest is delivered.
func TestRcptExpansionBeyondOneCommit(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw", "alice@example.com")
	const lists = 11 // 11 × 100 targets > 1000
	for i := range lists {
		var targets []string
		for j := range fsm.MaxForwardTargets {
			targets = append(targets, fmt.Sprintf("m%d-%d@far.invalid", i, j))
		}
		c.Apply(&fsm.ForwardAdd{Address: fmt.Sprintf("list%d@example.com", i), Targets: targets})
	}
	_, addr := startServer(t, testConfig(), c.Nodes[0])
	cl := dial(t, addr)
	cl.ehlo()
	cl.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	cl.expect("RCPT TO:<alice@example.com>", 250, "2.0.0")
	for i := range lists - 1 {
		cl.expect(fmt.Sprintf("RCPT TO:<list%d@example.com>", i), 250, "2.0.0")
	}
	cl.expect(fmt.Sprintf("RCPT TO:<list%d@example.com>", lists-1), 452, "4.5.3")
	checkReply(t, "DATA", cl.data("Subject: to many lists\r\n\r\nx\r\n"), 250, "2.0.0")

	// The refused list on its own, in the next transaction, is delivered.
	checkReply(t, "DATA", cl.transaction("s@remote.test", []string{fmt.Sprintf("list%d@example.com", lists-1)}, "Subject: rest\r\n\r\nx\r\n"), 250, "2.0.0")
	if got := waitInbox(t, c.Nodes[0], "alice@example.com", 1); len(got) != 1 {
		t.Fatalf("alice holds %d messages, want 1", len(got))
	}
}

// Each RCPT keeps the mailboxes it reached, for the notices that name
// it: 1,000 RCPTs naming sub-addresses of a list of 10,000 (cheap to
// look up, as the transaction shares the expansion) would hold ten
// million names for one transaction, and again at DATA. The names its
// RCPTs keep are bounded (maxListedTargets): the RCPT that would pass it
// gets 452 4.5.3, and is sent in another transaction.
func TestRcptListingsPerTransactionBounded(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.Apply(&fsm.DomainAdd{Name: "example.com"})
	add := &fsm.MailboxAdd{}
	for i := range 10000 {
		add.Mailboxes = append(add.Mailboxes, fsm.NewMailbox{Address: fmt.Sprintf("m%d@example.com", i)})
	}
	c.Apply(add)
	all := &fsm.ForwardAdd{Address: "all@example.com"}
	for i := range 100 {
		list := &fsm.ForwardAdd{Address: fmt.Sprintf("list%d@example.com", i)}
		for j := range 100 {
			list.Targets = append(list.Targets, fmt.Sprintf("m%d@example.com", i*100+j))
		}
		c.Apply(list)
		all.Targets = append(all.Targets, list.Address)
	}
	c.Apply(all)
	_, addr := startServer(t, testConfig(), c.Nodes[0])
	cl := dial(t, addr)
	cl.ehlo()
	cl.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	n := maxListedTargets / 10000
	for i := range n {
		cl.expect(fmt.Sprintf("RCPT TO:<all+%d@example.com>", i), 250, "2.0.0")
	}
	cl.expect(fmt.Sprintf("RCPT TO:<all+%d@example.com>", n), 452, "4.5.3")
	cl.expect("RSET", 250, "2.0.0")
	cl.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	cl.expect(fmt.Sprintf("RCPT TO:<all+%d@example.com>", n), 250, "2.0.0")
}
