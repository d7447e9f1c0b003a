package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	netsmtp "net/smtp"
	"powermail/frontend/internal/testtls"
	"strings"
	"testing"
	"time"

	"powermail/node"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	cfg, err := SMTPConfig{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxMessageBytes != 50<<20 || cfg.MaxRecipients != 1000 || cfg.MaxLineLength != 4096 ||
		cfg.MaxConnsPerIP != 20 || cfg.ReadTimeout != 5*time.Minute || cfg.WriteTimeout != time.Minute ||
		cfg.Hostname == "" || cfg.Logger == nil || cfg.ResolveTimeout <= 0 || cfg.DeliverTimeout <= 0 {
		t.Errorf("defaults: %+v", cfg)
	}
	for _, bad := range []SMTPConfig{
		{MaxMessageBytes: 1000},
		{MaxRecipients: 10},
		{MaxLineLength: 512},
		{MaxConnsPerIP: -1},
		{ReadTimeout: -time.Second},
	} {
		if _, err := NewSMTPServer(bad, newFakeDeliverer()); err == nil {
			t.Errorf("NewSMTPServer(%+v) accepted", bad)
		}
	}
	if _, err := NewSMTPServer(SMTPConfig{}, nil); err == nil {
		t.Error("nil Deliverer accepted")
	}
}

// STARTTLS (RFC 3207) with a stock client, net/smtp; the trace then says
// UTF8SMTPS (net/smtp sends SMTPUTF8 when offered; RFC 6531 §3.7.3).
func TestSTARTTLS(t *testing.T) {
	cfg := testConfig()
	serverTLS, roots := testtls.Config(t)
	cfg.TLS = serverTLS
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)

	c, err := netsmtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not advertised")
	}
	if err := c.StartTLS(&tls.Config{ServerName: "mx.test", RootCAs: roots}); err != nil {
		t.Fatalf("StartTLS: %v", err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised again inside TLS")
	}
	if err := c.Mail("s@remote.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.com"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "Subject: tls\r\n\r\nsecret\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("end of data: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	trace, content := splitTrace(t, f.lastDelivery(t).body)
	if !strings.Contains(trace, " with UTF8SMTPS id ") || content != "Subject: tls\r\n\r\nsecret\r\n" {
		t.Errorf("trace %q content %q", trace, content)
	}
}

func TestServeAfterClose(t *testing.T) {
	srv, err := NewSMTPServer(testConfig(), newFakeDeliverer())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close = %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Error("Serve left the listener open")
	}
}

// Shutdown ends idle connections with 421, lets a transaction in progress
// finish with its 250, then ends that connection too. Both are told the
// reply of a MAIL during the drain, 421 4.3.2 shutting down (RFC 5321
// §3.8, RFC 3463 X.3.2), not go-smtp's "421 4.4.2 Idle timeout, bye bye"
// for an expired read: an administrator reading a client's log would look
// for a timeout that never happened.
func TestShutdownDrains(t *testing.T) {
	f := newFakeDeliverer()
	release := make(chan struct{})
	inDeliver := make(chan struct{})
	f.deliverHook = func(ctx context.Context, msg node.Message, body io.Reader) (node.DeliveryResult, error) {
		_, err := io.Copy(io.Discard, body)
		close(inDeliver)
		<-release
		return node.DeliveryResult{}, err
	}
	srv, addr := startServer(t, testConfig(), f)
	idle := dial(t, addr)
	idle.ehlo()
	busy := dial(t, addr)
	busy.ehlo()
	busy.begin("alice@example.com")
	busy.expect("DATA", 354, "")
	busy.write("x\r\n.\r\n")
	<-inDeliver

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	r := idle.read()
	checkReply(t, "idle conn", r, 421, "4.3.2")
	if !strings.Contains(r.msg, "shutting down") {
		t.Errorf("idle conn told %v, want it told the server is shutting down", r)
	}
	idle.expectClosed()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v before the transaction finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	checkReply(t, "in-flight DATA", busy.read(), 250, "2.0.0")
	checkReply(t, "after DATA", busy.read(), 421, "4.3.2")
	busy.expectClosed()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// Shutdown with an expiring context closes what is left.
func TestShutdownDeadline(t *testing.T) {
	srv, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test>", 250, "") // busy: not drained as idle
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	c.expectClosed()
}

// STARTTLS in the middle of a transaction ends it (go-smtp starts a new
// session), so the connection is idle again: Shutdown ends it at once
// with 421 instead of waiting for a transaction that no longer exists,
// and its lifetime gets no transaction's grace.
func TestSTARTTLSEndsTransactionForShutdown(t *testing.T) {
	cfg := testConfig()
	serverTLS, roots := testtls.Config(t)
	cfg.TLS = serverTLS
	srv, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	c.expect("STARTTLS", 220, "")
	c.upgradeTLS(roots)
	c.ehlo()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v after %v", err, time.Since(start))
	}
	checkReply(t, "idle conn after STARTTLS", c.read(), 421, "4.3.2") // through TLS, as shutting down
}

// A drain answers a MAIL inside an open transaction with 421, the
// connection's last reply; a RCPT the client pipelined behind it gets
// the same 421, not a 250 for a transaction that can no longer finish.
// (DATA still gets go-smtp's 354, since the first transaction has a
// recipient, and then the 421: nothing is stored.)
func TestShutdownRefusesPipelinedRcpt(t *testing.T) {
	srv, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com") // open: Shutdown waits for it
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond) // the drain has begun
	c.write("MAIL FROM:<t@remote.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n")
	lines := c.expectClosed()
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "421") {
		t.Fatalf("MAIL during the drain: %q, want 421 first", lines)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "250") {
			t.Fatalf("replies to MAIL, RCPT, DATA pipelined into a draining connection: %q, want no 250", lines)
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
}

// A drain that finds a client under TLS that has not said EHLO over it
// yet (right after STARTTLS, or on an implicit-TLS port) answers through
// the TLS connection, never in plaintext below it, which the client
// would read as a broken record.
func TestShutdownAnswersThroughTLSBeforeEHLO(t *testing.T) {
	srv, plain, implicit, roots := startTLSServers(t, newFakeDeliverer())

	afterSTARTTLS := dial(t, plain)
	afterSTARTTLS.ehlo()
	afterSTARTTLS.expect("STARTTLS", 220, "")
	afterSTARTTLS.upgradeTLS(roots)
	onImplicit := dialRaw(t, implicit)
	onImplicit.upgradeTLS(roots)
	checkReply(t, "implicit TLS greeting", onImplicit.read(), 220, "")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for name, c := range map[string]*tclient{"after STARTTLS": afterSTARTTLS, "implicit TLS": onImplicit} {
		line, err := c.tp.ReadLine()
		if err != nil || !strings.HasPrefix(line, "421 ") {
			t.Errorf("%s, before EHLO: %q, %v; want a 421 through TLS", name, line, err)
		}
	}
}
