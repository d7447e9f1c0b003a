package frontend

import (
	"context"
	"fmt"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// A sender names a list of 20 lists of 4 mailboxes under 1,000
// sub-addresses in one transaction, pipelined, to a real node (1,000
// RCPTs of 80 keep fewer names than maxListedTargets): the
// first RCPT expands the list; each later one reads the records of its
// own spelling and of the base, and takes the expansion the
// transaction keeps (it read the whole list each time, 1,000 times a
// list's lookup). The message reaches each member once, and the next
// transaction expands the list afresh.
func TestSubaddressRcptsExpandAListOnce(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.Apply(&fsm.DomainAdd{Name: "example.com"})
	var lists []string
	for l := range 20 {
		add := &fsm.MailboxAdd{}
		fw := &fsm.ForwardAdd{Address: fmt.Sprintf("list%d@example.com", l)}
		for i := range 4 {
			m := fmt.Sprintf("u%d.%d@example.com", l, i)
			add.Mailboxes = append(add.Mailboxes, fsm.NewMailbox{Address: m})
			fw.Targets = append(fw.Targets, m)
		}
		c.Apply(add)
		c.Apply(fw)
		lists = append(lists, fw.Address)
	}
	c.Apply(&fsm.ForwardAdd{Address: "all@example.com", Targets: lists})
	cfg := testConfig()
	cfg.DeliverTimeout = 30 * time.Second
	_, addr := startServer(t, cfg, c.Nodes[0])
	st := c.Nodes[0].State()

	cl := dial(t, addr)
	cl.ehlo()
	cl.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	start := st.ResolveReads()
	cl.expect("RCPT TO:<all+0@example.com>", 250, "2.0.0")
	first := st.ResolveReads() - start
	const rcpts = 1000
	var lines string
	for i := 1; i < rcpts; i++ {
		lines += fmt.Sprintf("RCPT TO:<all+%d@example.com>\r\n", i)
	}
	cl.write(lines)
	for i := 1; i < rcpts; i++ {
		if r := cl.read(); r.code != 250 {
			t.Fatalf("RCPT all+%d: %v", i, r)
		}
	}
	later := st.ResolveReads() - start - first
	if first < 80 || later > 4*(rcpts-1) {
		t.Fatalf("the first RCPT read %d records, the %d later ones %d: want each later one to read at most 4", first, rcpts-1, later)
	}
	checkReply(t, "DATA", cl.data("Subject: all\r\n\r\nhi\r\n"), 250, "2.0.0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, box := range []string{"u0.0@example.com", "u19.3@example.com"} {
		if v, err := c.Nodes[0].View(ctx, box, "INBOX"); err != nil || len(v.Messages) != 1 {
			t.Fatalf("%s: %d messages (%v), want 1", box, len(v.Messages), err)
		}
	}

	cl.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	start = st.ResolveReads()
	cl.expect("RCPT TO:<all+0@example.com>", 250, "2.0.0")
	if again := st.ResolveReads() - start; again < first {
		t.Fatalf("a new transaction's first RCPT read %d records, the first transaction's %d: expansions outlived their transaction", again, first)
	}
	cl.expect("RSET", 250, "")
}

// A RCPT that node.Resolve defers because the transaction's lookups are
// used up (node.ErrExpansionLimit, which wraps ErrUnavailable) is
// answered 452 4.5.3, as a transaction too full is: the client sends
// it in another transaction.
func TestExpansionLimitIsTooManyRecipients(t *testing.T) {
	f := newFakeDeliverer()
	f.resolveErr["big@example.com"] = fmt.Errorf("%w: 100000 reads", node.ErrExpansionLimit)
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	c.expect("RCPT TO:<alice@example.com>", 250, "2.0.0")
	c.expect("RCPT TO:<big@example.com>", 452, "4.5.3")
}
