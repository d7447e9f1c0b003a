package frontend

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/node"
)

// Every RCPT outcome of the reply table in DESIGN.md.
func TestRcptReplies(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	for _, tc := range []struct {
		rcpt string
		code int
		enh  string
	}{
		{"<alice@example.com>", 250, "2.0.0"},
		{"<nobody@example.com>", 550, "5.1.1"},                     // unknown
		{"<someone@elsewhere.net>", 550, "5.7.1"},                  // not local: relaying denied
		{"<ext@example.com>", 451, "4.3.0"},                        // forwards outside
		{"<full@example.com>", 452, "4.2.2"},                       // over quota
		{"<down@example.com>", 451, "4.3.0"},                       // unavailable
		{"<bug@example.com>", 451, "4.3.0"},                        // unexpected error: temporary
		{"<empty@example.com>", 451, "4.3.0"},                      // no mailboxes, no error: temporary
		{"<a@exa_mple.com>", 501, "5.1.3"},                         // bad domain syntax
		{"<a@-example.com>", 501, "5.1.3"},                         // bad label
		{"<a@example..com>", 501, "5.1.3"},                         // empty label
		{"<\"a\x01b\"@example.com>", 501, "5.1.3"},                 // control character
		{"<" + strings.Repeat("a", 250) + "@x.com>", 501, "5.1.3"}, // path too long
		{"<jörg@example.com>", 553, "5.6.7"},                       // non-ASCII without SMTPUTF8
		{"alice@example.com", 250, "2.0.0"},                        // no brackets: go-smtp accepts
	} {
		r := c.cmd("RCPT TO:" + tc.rcpt)
		checkReply(t, tc.rcpt, r, tc.code, tc.enh)
	}
}

// RCPT TO:<postmaster> without a domain must be taken (RFC 5321 §4.5.1,
// §4.1.1.3): it reaches the configured Postmaster address, in any case.
func TestRcptPostmasterWithoutDomain(t *testing.T) {
	cfg := testConfig()
	cfg.Postmaster = "bob@example.com"
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test>", 250, "")
	c.expect("RCPT TO:<PostMaster>", 250, "2.0.0")
	checkReply(t, "DATA", c.data("Subject: hi\r\n\r\nhello\r\n"), 250, "2.0.0")
	if got := f.lastDelivery(t).msg.Mailboxes; fmt.Sprint(got) != "[bob@example.com]" {
		t.Errorf("delivered to %v", got)
	}
	// The trace names it by the address it reached: a Received "for"
	// takes a path with a domain (RFC 5321 §4.4).
	if trace, _ := splitTrace(t, f.lastDelivery(t).body); !strings.Contains(trace, "for <bob@example.com>;") {
		t.Errorf("trace:\n%s", trace)
	}

	// By default it is postmaster@ the host name, refused here as any
	// address the directory does not have.
	_, addr = startServer(t, testConfig(), f)
	c = dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test>", 250, "")
	if r := c.cmd("RCPT TO:<postmaster>"); r.code/100 != 5 || r.code == 501 {
		t.Errorf("postmaster@mx.test: got %v, want a refusal of the address", r)
	}
	if _, err := NewSMTPServer(SMTPConfig{Postmaster: "nobody"}, f); err == nil {
		t.Error("a Postmaster without a domain was accepted")
	}
}

// A host name that is no domain (an underscore, a leading hyphen) was
// announced as ever, but made the default Postmaster no address, and the
// server refused to start with a configuration that had always worked.
// Such a server has no default Postmaster, and <postmaster> without a
// domain is refused as a path without one. A fully qualified name's
// root dot is dropped.
func TestPostmasterDefaultFromOddHostname(t *testing.T) {
	if cfg, err := (SMTPConfig{Hostname: "mx.example.com."}).withDefaults(); err != nil || cfg.Postmaster != "postmaster@mx.example.com" {
		t.Fatalf("Hostname with a root dot: Postmaster %q, %v; want postmaster@mx.example.com", cfg.Postmaster, err)
	}
	for _, host := range []string{"mail_1.example.com", "-mx.example.com"} {
		cfg := testConfig()
		cfg.Hostname = host
		f := newFakeDeliverer()
		srv, err := NewSMTPServer(cfg, f)
		if err != nil {
			t.Fatalf("Hostname %q: %v", host, err)
		}
		_ = srv.Close()
		_, addr := startServer(t, cfg, f)
		c := dial(t, addr)
		c.ehlo()
		c.expect("MAIL FROM:<s@remote.test>", 250, "")
		c.expect("RCPT TO:<postmaster>", 501, "5.1.3")
		c.expect("RCPT TO:<alice@example.com>", 250, "")
	}
}

// The relay check does not depend on the sender: not even a local or
// null sender may relay (Promise 6).
func TestRelayDeniedWhateverSender(t *testing.T) {
	_, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	for _, from := range []string{"", "alice@example.com", "postmaster@example.com", "x@elsewhere.net"} {
		c.expect("MAIL FROM:<"+from+">", 250, "2.0.0")
		c.expect("RCPT TO:<victim@elsewhere.net>", 550, "5.7.1")
		c.expect("RCPT TO:<v@[192.0.2.1]>", 550, "5.7.1")
		c.expect("DATA", 502, "5.5.1")
		c.expect("RSET", 250, "")
	}
}

func TestTooManyRecipients(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRecipients = minRecipients
	f := newFakeDeliverer()
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	var batch strings.Builder
	batch.WriteString("MAIL FROM:<s@remote.test>\r\n")
	for range cfg.MaxRecipients + 1 {
		batch.WriteString("RCPT TO:<alice@example.com>\r\n")
	}
	c.write(batch.String())
	checkReply(t, "MAIL", c.read(), 250, "")
	for i := range cfg.MaxRecipients {
		checkReply(t, fmt.Sprintf("RCPT %d", i), c.read(), 250, "2.0.0")
	}
	checkReply(t, "RCPT over the limit", c.read(), 452, "4.5.3")
	r := c.data("x\r\n")
	checkReply(t, "DATA", r, 250, "2.0.0")
	if n := len(f.lastDelivery(t).msg.Mailboxes); n != 1 {
		t.Errorf("%d mailboxes, want 1", n)
	}
}

// Resolve gets a deadline; a Resolve that overruns ResolveTimeout is a
// temporary failure, not a hang.
func TestResolveDeadline(t *testing.T) {
	cfg := testConfig()
	cfg.ResolveTimeout = 100 * time.Millisecond
	f := newFakeDeliverer()
	f.resolveHook = func(ctx context.Context, rcpt string) error {
		if rcpt == "slow@example.com" {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	_, addr := startServer(t, cfg, f)
	c := dial(t, addr)
	c.ehlo()
	c.begin("alice@example.com")
	start := time.Now()
	c.expect("RCPT TO:<slow@example.com>", 451, "4.3.0")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("slow Resolve took %v", took)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, call := range f.resolves {
		if !call.hasDeadline {
			t.Errorf("Resolve(%q) without deadline", call.rcpt)
		}
	}
}

// RFC 1870: a declared SIZE over the fixed maximum is refused at MAIL.
func TestMailSizeRefused(t *testing.T) {
	cfg := testConfig()
	cfg.MaxMessageBytes = 100_000
	_, addr := startServer(t, cfg, newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test> SIZE=100001", 552, "5.3.4")
	c.expect("MAIL FROM:<> SIZE=100000", 250, "2.0.0")
}

// RFC 1870 §6.1: a node without the disk space for the declared size
// (or, without SIZE=, at its reserve) answers MAIL with 452 4.3.1, a
// temporary refusal, before the client sends the body.
func TestMailRefusedWithoutSpace(t *testing.T) {
	f := newFakeDeliverer()
	var mu sync.Mutex
	var sizes []int64
	f.spaceHook = func(size int64) error {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, size)
		if size > 1000 {
			return fmt.Errorf("%w: %w: disk", node.ErrUnavailable, node.ErrInsufficientStorage)
		}
		return nil
	}
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test> SIZE=5000", 452, "4.3.1")
	c.expect("MAIL FROM:<s@remote.test> SIZE=1000", 250, "2.0.0")
	c.expect("RSET", 250, "")
	c.expect("MAIL FROM:<s@remote.test>", 250, "2.0.0")
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(sizes) != "[5000 1000 0]" {
		t.Fatalf("CheckSpace saw sizes %v", sizes)
	}
}

func TestMailSenderChecks(t *testing.T) {
	_, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<\"a\x7fb\"@remote.test>", 501, "5.1.7")
	c.expect("MAIL FROM:<jörg@remote.test>", 553, "5.6.7")
	// Long SRS-style senders are fine.
	c.expect("MAIL FROM:<SRS0="+strings.Repeat("h", 80)+"=remote.test=user@fwd.test>", 250, "2.0.0")
	c.expect("RSET", 250, "")
	c.expect("MAIL FROM:<jörg@remote.test> SMTPUTF8", 250, "2.0.0")
}

// RFC 6531: with SMTPUTF8, UTF-8 addresses pass, and the trace says so.
func TestSMTPUTF8Transaction(t *testing.T) {
	f := newFakeDeliverer()
	f.directory["jörg@example.com"] = []string{"jörg@example.com"}
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<rené@remote.test> SMTPUTF8", 250, "")
	c.expect("RCPT TO:<jörg@example.com>", 250, "")
	checkReply(t, "DATA", c.data("Subject: grüße\r\n\r\nhi\r\n"), 250, "")
	trace, _ := splitTrace(t, f.lastDelivery(t).body)
	if !strings.Contains(trace, "with UTF8SMTP id") || !strings.Contains(trace, "<rené@remote.test>") {
		t.Errorf("trace:\n%s", trace)
	}
}

// DSN parameters (RFC 3461) are accepted, within the RFC's bounds.
func TestDSNParametersAccepted(t *testing.T) {
	_, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	c.expect("MAIL FROM:<s@remote.test> RET=HDRS ENVID=QQ314159", 250, "2.0.0")
	c.expect("RCPT TO:<alice@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.com", 250, "2.0.0")
	c.expect("RCPT TO:<alice@example.com> ORCPT=rfc822;"+strings.Repeat("a", 493), 501, "5.5.4") // "rfc822; " and 493 is 501
	checkReply(t, "DATA", c.data("x\r\n"), 250, "2.0.0")
	c.expect("MAIL FROM:<s@remote.test> ENVID="+strings.Repeat("Q", 101), 501, "5.5.4")
}

// A recipient whose local part is not UTF-8 is bad syntax (RFC 6531
// §3.3 allows UTF-8 only), with or without SMTPUTF8: 501 5.1.3, never
// the 550 5.1.1 of an unknown mailbox, and the directory is not asked
// (a state key would fold each bad byte to U+FFFD and could match a
// name holding one).
func TestRcptInvalidUTF8IsBadSyntax(t *testing.T) {
	f := newFakeDeliverer()
	f.directory["a\ufffdb@example.com"] = []string{"a\ufffdb@example.com"}
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	for _, mail := range []string{"MAIL FROM:<s@remote.test>", "MAIL FROM:<s@remote.test> SMTPUTF8"} {
		c.expect(mail, 250, "2.0.0")
		for _, rcpt := range []string{"<a\xffb@example.com>", "<a\xc3b@example.com>", "<\"a\xfe\"@example.com>"} {
			checkReply(t, mail+" RCPT "+rcpt, c.cmd("RCPT TO:"+rcpt), 501, "5.1.3")
		}
		c.expect("RSET", 250, "")
	}
}
