package frontend

import (
	"crypto/tls"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"powermail/frontend/internal/testtls"
	"powermail/node/nodetest"
)

// STARTTLS command injection (RFC 3207 §4.2, CVE-2011-0411): commands a
// client pipelines behind STARTTLS in plaintext are not run inside the
// TLS session, and the session after the handshake knows nothing of the
// one before (EHLO again, no AUTH, no transaction), on the MX, the
// submission and the LMTP listener.
func TestSMTPStartTLSInjection(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	serverTLS, roots := testtls.Config(t)
	for _, kind := range []string{"smtp", "submission", "lmtp"} {
		cfg := testConfig()
		cfg.TLS, cfg.Submission, cfg.LMTP = serverTLS, kind == "submission", kind == "lmtp"
		cfg.Auth = NewAuthenticator(c.Nodes[0], AuthConfig{FailureDelay: time.Millisecond}, nil)
		_, addr := startServer(t, cfg, c.Nodes[0])
		hello := "EHLO"
		if cfg.LMTP {
			hello = "LHLO"
		}

		cl := dial(t, addr)
		r := cl.expect(hello+" client.test", 250, "")
		if !strings.Contains(r.msg, "STARTTLS") || strings.Contains(r.msg, "AUTH") {
			t.Fatalf("%s: plaintext %s %q: want STARTTLS and no AUTH", kind, hello, r.msg)
		}
		// A transaction begun in plaintext, and commands behind STARTTLS.
		if !cfg.Submission {
			cl.expect("MAIL FROM:<s@remote.test>", 250, "")
		}
		cl.write("STARTTLS\r\n" + hello + " injected\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.com>\r\n")
		checkReply(t, kind+" STARTTLS", cl.read(), 220, "")
		tc := tls.Client(cl.conn, &tls.Config{ServerName: "mx.test", RootCAs: roots})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("%s: handshake: %v", kind, err)
		}
		cl.conn, cl.tp = tc, textproto.NewConn(tc)
		// The first reply under TLS answers this command: the injected
		// greeting did not run, so the session must greet again (go-smtp:
		// "Please introduce yourself first"), and neither transaction
		// survived.
		cl.expect("MAIL FROM:<s@remote.test>", 502, "5.5.1")
		r = cl.expect(hello+" client.test", 250, "")
		if strings.Contains(r.msg, "STARTTLS") {
			t.Errorf("%s: %s under TLS offers STARTTLS: %q", kind, hello, r.msg)
		}
		if cfg.Submission != strings.Contains(r.msg, "AUTH PLAIN") {
			t.Errorf("%s: %s under TLS: AUTH offered %v, want %v: %q", kind, hello, !cfg.Submission, cfg.Submission, r.msg)
		}
		cl.expect("RCPT TO:<alice@example.com>", 502, "") // no MAIL in this session
		cl.expect("STARTTLS", 502, "5.5.1")
	}
}
