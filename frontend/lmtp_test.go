package frontend

import (
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"powermail/node"
)

func lmtpConfig() SMTPConfig {
	cfg := testConfig()
	cfg.LMTP = true
	return cfg
}

// RFC 2033 §4.2: one reply per accepted RCPT, in RCPT order, after the
// final dot. A recipient gets 250 only if all its mailboxes were stored.
func TestLMTPPerRecipientStatus(t *testing.T) {
	f := newFakeDeliverer()
	f.rejected["bob@example.com"] = fmt.Errorf("bob: %w", node.ErrOverQuota)
	f.rejected["carol@example.com"] = fmt.Errorf("carol gone: %w", node.ErrUnknownRecipient)
	_, addr := startServer(t, lmtpConfig(), f)
	c := dial(t, addr)
	c.expect("EHLO client.test", 500, "5.5.1")
	c.expect("LHLO client.test", 250, "")
	c.expect("MAIL FROM:<s@remote.test>", 250, "")
	rcpts := []string{"alice@example.com", "bob@example.com", "nobody@example.com", "al@example.com", "team@example.com", "carol@example.com", "alice@example.com"}
	for _, r := range rcpts {
		code := 250
		if r == "nobody@example.com" {
			code = 550
		}
		c.expect("RCPT TO:<"+r+">", code, "")
	}
	c.expect("DATA", 354, "")
	c.write("hello\r\n.\r\n")
	want := []struct {
		rcpt string
		code int
		enh  string
	}{
		{"alice@example.com", 250, "2.0.0"},
		{"bob@example.com", 452, "4.2.2"},
		{"al@example.com", 250, "2.0.0"},
		{"team@example.com", 452, "4.2.2"}, // alice stored, bob not
		{"carol@example.com", 550, "5.1.1"},
		{"alice@example.com", 250, "2.0.0"},
	}
	for _, w := range want {
		r := c.read()
		checkReply(t, w.rcpt, r, w.code, w.enh)
		if !strings.Contains(r.msg, "<"+w.rcpt+">") {
			t.Errorf("reply %v does not name <%s>", r, w.rcpt)
		}
	}
	c.expect("NOOP", 250, "")

	ds := f.allDeliveries()
	if len(ds) != 1 || len(ds[0].msg.Mailboxes) != 3 {
		t.Fatalf("deliveries %+v", ds)
	}
	trace, _ := splitTrace(t, ds[0].body)
	if !strings.Contains(trace, " with LMTP id ") {
		t.Errorf("trace:\n%s", trace)
	}
}

// A failed Deliver answers every recipient with the same temporary code.
func TestLMTPDeliverError(t *testing.T) {
	f := newFakeDeliverer()
	f.deliverErr = fmt.Errorf("few replicas: %w", node.ErrUnavailable)
	_, addr := startServer(t, lmtpConfig(), f)
	c := dial(t, addr)
	c.expect("LHLO client.test", 250, "")
	c.begin("alice@example.com")
	c.expect("RCPT TO:<bob@example.com>", 250, "")
	c.expect("DATA", 354, "")
	c.write("hello\r\n.\r\n")
	for _, rcpt := range []string{"alice", "bob"} {
		checkReply(t, rcpt, c.read(), 451, "4.3.0")
	}
}

// LMTP with BDAT: per-recipient replies after BDAT LAST.
func TestLMTPBDAT(t *testing.T) {
	f := newFakeDeliverer()
	f.rejected["bob@example.com"] = fmt.Errorf("bob: %w", node.ErrOverQuota)
	_, addr := startServer(t, lmtpConfig(), f)
	c := dial(t, addr)
	c.expect("LHLO client.test", 250, "")
	c.begin("alice@example.com")
	c.expect("RCPT TO:<bob@example.com>", 250, "")
	c.write("BDAT 4\r\nabcdBDAT 3 LAST\r\nefg")
	checkReply(t, "first chunk", c.read(), 250, "")
	checkReply(t, "alice", c.read(), 250, "2.0.0")
	checkReply(t, "bob", c.read(), 452, "4.2.2")
	// The last line, unended, is stored with CRLF (crlfReader).
	if _, got := splitTrace(t, f.lastDelivery(t).body); got != "abcdefg\r\n" {
		t.Errorf("content %q", got)
	}
}

// LMTP is usually served on a unix socket: no IP, so no per-IP limit and
// no address literal in the trace.
func TestLMTPOverUnixSocket(t *testing.T) {
	cfg := lmtpConfig()
	cfg.MaxConnsPerIP = 1
	f := newFakeDeliverer()
	srv, err := NewSMTPServer(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	var clients []*tclient
	for range 2 { // more than MaxConnsPerIP: not limited
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		c := &tclient{t: t, conn: conn, tp: textproto.NewConn(conn)}
		checkReply(t, "greeting", c.read(), 220, "")
		clients = append(clients, c)
	}
	c := clients[1]
	c.expect("LHLO mda.test", 250, "")
	c.begin("alice@example.com")
	checkReply(t, "DATA", c.data("hi\r\n"), 250, "2.0.0")
	trace, _ := splitTrace(t, f.lastDelivery(t).body)
	if !strings.Contains(trace, "Received: from mda.test\r\n\tby mx.test with LMTP") {
		t.Errorf("trace:\n%s", trace)
	}
}

// A second MAIL inside a transaction is refused (RFC 5321 §4.1.1.2), so
// go-smtp's recipient list and ours cannot diverge: no recipient gets a
// 250 for a mailbox that was not delivered.
func TestNestedMAILRefused(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		cfg := testConfig()
		cfg.LMTP = lmtp
		f := newFakeDeliverer()
		_, addr := startServer(t, cfg, f)
		c := dial(t, addr)
		if lmtp {
			c.expect("LHLO client.test", 250, "")
		} else {
			c.ehlo()
		}
		c.begin("alice@example.com")
		c.expect("MAIL FROM:<other@remote.test>", 503, "5.5.1")
		c.expect("RCPT TO:<bob@example.com>", 250, "")
		checkReply(t, "DATA", c.data("x\r\n"), 250, "2.0.0")
		if lmtp {
			checkReply(t, "second LMTP status", c.read(), 250, "2.0.0")
		}
		d := f.lastDelivery(t)
		if d.msg.From != "s@remote.test" || len(d.msg.Mailboxes) != 2 {
			t.Errorf("lmtp=%v: delivered %+v", lmtp, d.msg)
		}
	}
}

// RCPT TO:<postmaster> without a domain reaches the Postmaster address,
// but its LMTP reply after the dot is keyed, as go-smtp keys it, by the
// address the client sent: one 250 naming <postmaster>, and the session
// goes on.
func TestLMTPPostmasterWithoutDomain(t *testing.T) {
	c, f := lmtpWithPostmaster(t)
	c.expect("RCPT TO:<Postmaster>", 250, "")
	c.expect("DATA", 354, "")
	c.write("hello\r\n.\r\n")
	checkReply(t, "alice", c.read(), 250, "2.0.0")
	r := c.read()
	checkReply(t, "postmaster", r, 250, "2.0.0")
	if !strings.Contains(r.msg, "<Postmaster>") {
		t.Errorf("reply %v does not name <Postmaster>", r)
	}
	c.expect("NOOP", 250, "")
	if got := f.lastDelivery(t).msg.Mailboxes; fmt.Sprint(got) != "[alice@example.com bob@example.com]" {
		t.Errorf("delivered to %v", got)
	}
}

// <postmaster> and the Postmaster address in one LMTP transaction are
// recipients for go-smtp, each with its reply after the dot in order, and
// one mailbox: the message is stored for it once.
func TestLMTPPostmasterAndItsAddress(t *testing.T) {
	c, f := lmtpWithPostmaster(t)
	c.expect("RCPT TO:<postmaster>", 250, "")
	c.expect("RCPT TO:<bob@example.com>", 250, "")
	c.expect("RCPT TO:<POSTMASTER>", 250, "")
	c.expect("DATA", 354, "")
	c.write("hello\r\n.\r\n")
	for _, want := range []string{"<alice@example.com>", "<postmaster>", "<bob@example.com>", "<POSTMASTER>"} {
		r := c.read()
		checkReply(t, want, r, 250, "2.0.0")
		if !strings.Contains(r.msg, want) {
			t.Errorf("reply %v does not name %s", r, want)
		}
	}
	c.expect("NOOP", 250, "")
	if got := f.lastDelivery(t).msg.Mailboxes; fmt.Sprint(got) != "[alice@example.com bob@example.com]" {
		t.Errorf("delivered to %v", got)
	}
}

// lmtpWithPostmaster serves LMTP with bob@example.com as the Postmaster
// and opens a transaction to alice@example.com.
func lmtpWithPostmaster(t *testing.T) (*tclient, *fakeDeliverer) {
	t.Helper()
	cfg := lmtpConfig()
	cfg.Postmaster = "bob@example.com"
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.expect("LHLO client.test", 250, "")
	c.begin("alice@example.com")
	return c, f
}
