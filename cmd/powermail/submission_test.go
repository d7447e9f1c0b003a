package main

import (
	"crypto/tls"
	"encoding/json"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"powermail/node/testcerts"
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
	transact(t, c, "alice@example.com", []string{"bob@example.com", "friend@elsewhere.net"}, "From: Alice <alice@example.com>\r\nSubject: from my laptop\r\n\r\nhello\r\n")
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

// One node serves submission with STARTTLS and over implicit TLS at
// once (one server, one set of metrics); a client on the implicit-TLS
// port authenticates without --allow-insecure-auth and sends.
func TestSubmissionOverImplicitTLSThroughTheBinary(t *testing.T) {
	ca := testcerts.NewCA(t, "test CA")
	cert, key, _ := ca.Issue(t, t.TempDir(), "mx")
	p := &proc{id: "n1", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir(), sub: freeAddr(t)}
	implicit := freeAddr(t)
	p.start(t, "--bootstrap", "--replicas", "1", "--tls-cert", cert, "--tls-key", key, "--submission", p.sub, "--submissions", implicit)
	p.waitLeader(t, 30*time.Second)
	mustCLI(t, "domain", "add", "example.com", "--addr", p.admin)
	mustCLI(t, "mailbox", "add", "alice@example.com", "--password", "pw-alice", "--addr", p.admin)

	var conn *tls.Conn
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) { // listeners start after the admin API
		if conn, err = tls.Dial("tcp", implicit, &tls.Config{ServerName: "localhost", RootCAs: ca.Pool()}); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("TLS to --submissions: %v; the log:\n%s", err, p.log.String())
	}
	c, err := smtp.NewClient(conn, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(smtp.PlainAuth("", "alice@example.com", "pw-alice", "localhost")); err != nil {
		t.Fatalf("AUTH over implicit TLS: %v", err)
	}
	transact(t, c, "alice@example.com", []string{"alice@example.com"}, "From: alice@example.com\r\nSubject: 465\r\n\r\nhi\r\n")
	if m := messages(t, p.admin, "alice@example.com"); len(m) != 1 {
		t.Fatalf("alice: %+v", m)
	}
}

// transact runs one mail transaction on an authenticated client.
func transact(t *testing.T, c *smtp.Client, from string, to []string, body string) {
	t.Helper()
	if err := c.Mail(from); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(body))
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
}
