package frontend

import (
	"testing"
	"time"

	"powermail/node"
	"powermail/node/nodetest"
)

// A mail client that offers SMTPUTF8 sends a recipient of an
// internationalised domain as the user typed it, in U-labels (RFC 6531
// §3.2 lets either form be used). Submission accepted such a recipient at
// RCPT and then answered every DATA with 451, since the queue entry named
// the domain in a form the directory does not hold: the client retried
// for ever. The recipient is queued by its A-labels, which name the same
// domain (RFC 5890 §2.3.2.1), and both spellings of one address are one
// recipient.
func TestSubmissionToUnicodeDomainIsQueued(t *testing.T) {
	got := submitAndQueue(t, true, "jörg@bücher.example", "jörg@xn--bcher-kva.example", "anna@münchen.example")
	want := []string{"jörg@xn--bcher-kva.example", "anna@xn--mnchen-3ya.example"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("queued recipients %q, want %q", got, want)
	}
}

// A domain is case-insensitive (RFC 5321 §2.4), a local part is not: a
// client that names one address twice with its domain spelt differently
// (from an address book and from a reply) queued it twice, and the
// remote server got the message twice. The domain is queued in lower
// case; a local part keeps its case.
func TestSubmissionQueuesADomainInLowerCase(t *testing.T) {
	got := submitAndQueue(t, false, "bob@Example.NET", "bob@example.net", "Bob@EXAMPLE.net")
	want := []string{"bob@example.net", "Bob@example.net"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("queued recipients %q, want %q", got, want)
	}
}

// submitAndQueue submits one message from alice@ to rcpts, each RCPT
// accepted, and returns the recipients of the one queue entry it makes.
func submitAndQueue(t *testing.T, smtputf8 bool, rcpts ...string) []string {
	t.Helper()
	c := nodetest.StartWith(t, 1, func(cfg *node.Config) { cfg.Queue.Interval = time.Hour })
	c.AddMailboxes("pw-alice", "alice@example.com")
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])
	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")
	mail := "MAIL FROM:<alice@example.com>"
	if smtputf8 {
		mail += " SMTPUTF8"
	}
	cl.expect(mail, 250, "2.0.0")
	for _, r := range rcpts {
		cl.expect("RCPT TO:<"+r+">", 250, "2.0.0")
	}
	r := cl.data("From: alice@example.com\r\nTo: " + rcpts[0] + "\r\nSubject: queued\r\n\r\nhi\r\n")
	checkReply(t, "DATA", r, 250, "2.0.0")
	entries, err := c.Nodes[0].State().QueueList("", 10)
	if err != nil || len(entries) != 1 {
		t.Fatalf("queue: %+v %v", entries, err)
	}
	var got []string
	for _, r := range entries[0].Recipients {
		got = append(got, r.Address)
	}
	return got
}
