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
// one before (EHLO again, no AUTH, no transaction), on the MX and on
// the submission listener.
func TestSMTPStartTLSInjection(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	serverTLS, roots := testtls.Config(t)
	for _, submission := range []bool{false, true} {
		cfg := testConfig()
		cfg.TLS, cfg.Submission = serverTLS, submission
		cfg.Auth = NewAuthenticator(c.Nodes[0], AuthConfig{FailureDelay: time.Millisecond}, nil)
		_, addr := startServer(t, cfg, c.Nodes[0])

		cl := dial(t, addr)
		r := cl.ehlo()
		if !strings.Contains(r.msg, "STARTTLS") || strings.Contains(r.msg, "AUTH") {
			t.Fatalf("submission=%v plaintext EHLO %q: want STARTTLS and no AUTH", submission, r.msg)
		}
		// A transaction begun in plaintext, and commands behind STARTTLS.
		if !submission {
			cl.expect("MAIL FROM:<s@remote.test>", 250, "")
		}
		cl.write("STARTTLS\r\nEHLO injected\r\nMAIL FROM:<evil@remote.test>\r\nRCPT TO:<alice@example.com>\r\n")
		checkReply(t, "STARTTLS", cl.read(), 220, "")
		tc := tls.Client(cl.conn, &tls.Config{ServerName: "mx.test", RootCAs: roots})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("submission=%v handshake: %v", submission, err)
		}
		cl.conn, cl.tp = tc, textproto.NewConn(tc)
		// The first reply under TLS answers this command: the injected
		// EHLO did not run, so the session must greet again (503), and
		// neither transaction survived.
		cl.expect("MAIL FROM:<s@remote.test>", 502, "5.5.1") // go-smtp: "Please introduce yourself first"
		r = cl.ehlo()
		if strings.Contains(r.msg, "STARTTLS") {
			t.Errorf("submission=%v EHLO under TLS offers STARTTLS: %q", submission, r.msg)
		}
		if submission && !strings.Contains(r.msg, "AUTH PLAIN") {
			t.Errorf("EHLO under TLS does not offer AUTH: %q", r.msg)
		}
		cl.expect("RCPT TO:<alice@example.com>", 502, "") // no MAIL in this session
		cl.expect("STARTTLS", 502, "5.5.1")
	}
}
