package main

import (
	"encoding/json"
	"net/smtp"
	"strings"
	"testing"
)

// A mail client (net/smtp) authenticates on the binary's submission
// listener and sends to a local mailbox and to another provider: the
// local copy lands on every node and the other is queued.
func TestSubmissionThroughTheBinary(t *testing.T) {
	ps := startMailCluster(t)
	c, err := smtp.Dial(ps[1].sub)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("laptop.test"); err != nil {
		t.Fatal(err)
	}
	// net/smtp sends PLAIN in the clear only to localhost, which this is.
	if err := c.Auth(smtp.PlainAuth("", "alice@example.com", "pw-alice", "127.0.0.1")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := c.Mail("alice@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"bob@example.com", "friend@elsewhere.net"} {
		if err := c.Rcpt(r); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: from my laptop\r\n\r\nhello\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	c.Quit()
	for _, p := range ps {
		if m := messages(t, p.admin, "bob@example.com"); len(m) != 1 {
			t.Fatalf("bob on %s: %+v", p.id, m)
		}
	}
	var queue []struct {
		From       string `json:"from"`
		Recipients []struct {
			Address string `json:"address"`
		} `json:"recipients"`
	}
	if err := json.Unmarshal([]byte(mustCLI(t, "queue", "ls", "--json", "--addr", ps[0].admin)), &queue); err != nil {
		t.Fatal(err)
	}
	if len(queue) != 1 || queue[0].From != "alice@example.com" || len(queue[0].Recipients) != 1 ||
		!strings.EqualFold(queue[0].Recipients[0].Address, "friend@elsewhere.net") {
		t.Fatalf("queue: %+v", queue)
	}
}
