package frontend

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"powermail/frontend/internal/testtls"
	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// startSubmission serves submission (RFC 6409) for d, checking
// passwords with store, and returns its address.
func startSubmission(t *testing.T, store PasswordChecker, d Deliverer) string {
	t.Helper()
	cfg := testConfig()
	cfg.Submission = true
	cfg.Auth = NewAuthenticator(store, AuthConfig{AllowInsecure: true, FailureDelay: time.Millisecond}, nil)
	_, addr := startServer(t, cfg, d)
	return addr
}

// authPlain connects to addr, says EHLO and logs in as user with
// password by AUTH PLAIN, which must be answered code and enh.
func authPlain(t *testing.T, addr, user, password string, code int, enh string) *tclient {
	t.Helper()
	c := dial(t, addr)
	c.ehlo()
	c.expect("AUTH PLAIN "+b64("\x00"+user+"\x00"+password), code, enh)
	return c
}

// A user's mail client submits through a three-node cluster (RFC 6409):
// nothing before AUTH, a wrong password refused, no sending as another
// user (only the mailbox, with or without a +detail, or its alias), and
// mail to a local mailbox and to another provider accepted in one
// transaction, the latter queued. A malformed exchange gets 501, and a
// third failed AUTH closes the connection.
func TestSubmission(t *testing.T) {
	// No queue round during the test: the outbound attempt would find
	// elsewhere.net missing (NXDOMAIN here), bounce the entry and
	// remove it before a slow machine reads the queue.
	c := nodetest.StartWith(t, 3, func(cfg *node.Config) { cfg.Queue.Interval = time.Hour })
	c.AddMailboxes("pw-alice", "alice@example.com")
	c.AddMailboxes("pw-bob", "bob@example.com")
	c.Apply(&fsm.ForwardAdd{Address: "al@example.com", Targets: []string{"alice@example.com"}})
	addr := startSubmission(t, c.Nodes[0], c.Nodes[1])

	cl := dial(t, addr)
	if r := cl.ehlo(); !strings.Contains(r.msg, "AUTH PLAIN LOGIN") {
		t.Fatalf("EHLO does not offer AUTH: %q", r.msg)
	}
	cl.expect("MAIL FROM:<alice@example.com>", 530, "5.7.0")
	cl.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00wrong"), 535, "5.7.8")
	cl.expect("AUTH PLAIN "+b64("bob@example.com\x00alice@example.com\x00pw-alice"), 535, "5.7.8") // acting as bob
	cl.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00pw-alice"), 235, "2.0.0")
	cl.expect("MAIL FROM:<bob@example.com>", 553, "5.7.1")
	cl.expect("MAIL FROM:<>", 553, "5.7.1")
	cl.expect("MAIL FROM:<al@example.com>", 250, "2.0.0") // her alias (sendas_test.go)
	cl.expect("RSET", 250, "")
	cl.expect("MAIL FROM:<alice+news@example.com>", 250, "2.0.0")
	cl.expect("RSET", 250, "")
	r := cl.transaction("Alice@example.com", []string{"bob@example.com", "friend@elsewhere.net"}, "From: Alice <Alice@example.com>\r\nSubject: lunch\r\n\r\nToday?\r\n")
	checkReply(t, "DATA", r, 250, "2.0.0")

	got := waitInbox(t, c.Nodes[0], "bob@example.com", 1)[0]
	if !strings.Contains(got, "with ESMTPA") || !strings.Contains(got, "Subject: lunch") {
		t.Errorf("bob's copy:\n%s", got)
	}
	entries, err := c.Nodes[0].State().QueueList("", 10)
	if err != nil || len(entries) != 1 || entries[0].From != "Alice@example.com" || !entries[0].Submitted ||
		len(entries[0].Recipients) != 1 || entries[0].Recipients[0].Address != "friend@elsewhere.net" {
		t.Fatalf("queue: %+v %v", entries, err)
	}

	// LOGIN, as older clients use it, with and without an initial response.
	for _, first := range []string{"AUTH LOGIN", "AUTH LOGIN " + b64("alice@example.com")} {
		lc := dial(t, addr)
		lc.ehlo()
		if first == "AUTH LOGIN" {
			if r := lc.cmd(first); r.code != 334 || r.msg != b64("Username:") {
				t.Fatalf("%s: %v", first, r)
			}
			first = b64("alice@example.com")
		}
		if r := lc.cmd(first); r.code != 334 || r.msg != b64("Password:") {
			t.Fatalf("LOGIN user: %v", r)
		}
		lc.expect(b64("pw-alice"), 235, "2.0.0")
		lc.expect("MAIL FROM:<alice@example.com>", 250, "2.0.0")
	}

	bad := dial(t, addr)
	bad.ehlo()
	bad.expect("AUTH PLAIN =", 501, "5.5.2")
	bad.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00guess1"), 535, "5.7.8")
	bad.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00guess2"), 535, "5.7.8")
	bad.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00guess3"), 421, "4.7.0")
	if lines := bad.expectClosed(); len(lines) > 0 {
		t.Fatalf("after the third failure's 421 the server said more: %q", lines)
	}
}

// Submission needs TLS for AUTH unless insecure authentication is
// allowed, and the MX listener offers no AUTH and relays nothing.
func TestSubmissionNeedsTLSAndStaysOffPort25(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	auth := NewAuthenticator(c.Nodes[0], AuthConfig{}, nil)
	cfg := testConfig()
	cfg.Submission, cfg.Auth = true, auth
	_, sub := startServer(t, cfg, c.Nodes[0])
	cl := dial(t, sub)
	cl.ehlo()
	cl.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00pw-alice"), 523, "5.7.10")

	mxCfg := testConfig()
	_, mx := startServer(t, mxCfg, c.Nodes[0])
	m := dial(t, mx)
	if r := m.ehlo(); strings.Contains(r.msg, "AUTH") {
		t.Fatalf("the MX listener offers AUTH: %q", r.msg)
	}
	m.expect("MAIL FROM:<alice@example.com>", 250, "2.0.0")
	m.expect("RCPT TO:<friend@elsewhere.net>", 550, "5.7.1")
}

// Submission over implicit TLS (RFC 8314, port 465): TLS from the first
// byte, AUTH allowed because the connection is TLS (insecure auth off),
// and the trace says ESMTPSA.
func TestSubmissionImplicitTLS(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	srv, roots := tlsSubmissionServer(t, c, 0)
	addr := serveOn(t, srv.ServeTLS)

	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "mx.test", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &tclient{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { conn.Close() })
	if r := cl.read(); r.code != 220 {
		t.Fatalf("greeting over TLS: %v", r)
	}
	cl.ehlo()
	cl.expect("AUTH PLAIN "+b64("\x00alice@example.com\x00pw-alice"), 235, "2.0.0")
	checkReply(t, "DATA", cl.transaction("alice@example.com", []string{"alice@example.com"}, "From: alice@example.com\r\nSubject: over 465\r\n\r\nhi\r\n"), 250, "2.0.0")
	if got := waitInbox(t, c.Nodes[0], "alice@example.com", 1)[0]; !strings.Contains(got, "with ESMTPSA") {
		t.Errorf("trace of a message over implicit TLS:\n%s", got)
	}
}

// Over the per-IP limit, an implicit-TLS port closes the connection
// without a plaintext 421, which a client awaiting the TLS handshake
// would read as a protocol error; the plain port still says 421.
func TestImplicitTLSRefusalOnlyCloses(t *testing.T) {
	c := nodetest.Start(t, 1)
	srv, roots := tlsSubmissionServer(t, c, 1)
	tlsAddr, plainAddr := serveOn(t, srv.ServeTLS), serveOn(t, srv.Serve)
	held, err := tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "mx.test", RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	held.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(held).ReadString('\n'); err != nil {
		t.Fatalf("greeting of the held connection: %v", err)
	}
	firstBytes := func(addr string) string {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		got, err := io.ReadAll(conn) // the server closes after its refusal
		if err != nil {
			t.Fatalf("%s: not closed by the server: %v", addr, err)
		}
		return string(got)
	}
	if got := firstBytes(tlsAddr); got != "" {
		t.Errorf("the implicit-TLS port refused with %q, want a bare close", got)
	}
	if got := firstBytes(plainAddr); !strings.HasPrefix(got, "421 4.7.0") {
		t.Errorf("the plain port refused with %q, want 421 4.7.0", got)
	}
}

// A submitted message must name its user as its author: From: (and
// Sender: when present) hold only the mailbox's own address, with or
// without a +detail, whatever the display name's charset. Refusals are
// permanent, store nothing and leave the session usable.
func TestSubmissionChecksTheAuthor(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	c.AddMailboxes("pw-bob", "bob@example.com")
	cfg := testConfig()
	cfg.Submission, cfg.MaxMessageBytes = true, 1<<20
	cfg.Auth = NewAuthenticator(c.Nodes[0], AuthConfig{AllowInsecure: true}, nil)
	_, addr := startServer(t, cfg, c.Nodes[0])
	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")

	cases := []struct {
		header string
		code   int
		status string
	}{
		{"From: Alice <alice@example.com>\r\n", 250, "2.0.0"},
		{"Subject: x\r\nfrom: ALICE+lists@Example.COM\r\n", 250, "2.0.0"},
		{"From: =?koi8-r?B?4czJ08E=?= <alice@example.com>\r\nSender: alice@example.com\r\n", 250, "2.0.0"},
		{"From: Bob <bob@example.com>\r\n", 550, "5.7.1"},
		{"From: Alice\r\n <bob@example.com>\r\n", 550, "5.7.1"}, // folded
		{"From: alice@example.com, bob@example.com\r\n", 550, "5.7.1"},
		{"From: alice@example.com\r\nSender: bob@example.com\r\n", 550, "5.7.1"},
		{"From: alice@example.com\r\nFrom: bob@example.com\r\n", 550, "5.7.1"},
		{"From: not an address\r\n", 550, "5.7.1"},
		{"From : bob@example.com\r\nFrom: alice@example.com\r\n", 550, "5.7.1"}, // obsolete blank before the colon
		{"From: alice@example.com\r\nSender : bob@example.com\r\n", 550, "5.7.1"},
		{"FROM: bob@example.com\r\n", 550, "5.7.1"},
		{"Subject: anonymous\r\n", 550, "5.6.0"},
		{"From: alice@example.com\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 70)+"\r\n", MaxSubmissionHeader/79+1), 552, "5.3.4"},
	}
	delivered := 0
	for _, tc := range cases {
		r := cl.transaction("alice@example.com", []string{"bob@example.com"}, tc.header+"\r\nbody\r\n")
		if r.code != tc.code || !strings.HasPrefix(r.msg, tc.status) {
			t.Errorf("%.60q: %d %s, want %d %s", tc.header, r.code, r.msg, tc.code, tc.status)
		}
		if r.code == 250 {
			delivered++
		}
	}
	got := waitInbox(t, c.Nodes[0], "bob@example.com", delivered)
	if len(got) != delivered {
		t.Fatalf("bob holds %d messages, want %d", len(got), delivered)
	}
	for _, m := range got {
		if strings.Contains(m, "bob@example.com>") && strings.Contains(m, "From: Bob") {
			t.Errorf("a refused message was stored:\n%s", m)
		}
	}
}

// tlsSubmissionServer is a submission server on c's first node with a
// test certificate (and maxPerIP connections per IP, 0: the default);
// it returns the roots that trust the certificate.
func tlsSubmissionServer(t *testing.T, c *nodetest.Cluster, maxPerIP int) (*SMTPServer, *x509.CertPool) {
	t.Helper()
	serverTLS, roots := testtls.Config(t)
	cfg := testConfig()
	cfg.Submission, cfg.TLS = true, serverTLS
	if maxPerIP > 0 {
		cfg.MaxConnsPerIP = maxPerIP
	}
	cfg.Auth = NewAuthenticator(c.Nodes[0], AuthConfig{}, nil)
	srv, err := NewSMTPServer(cfg, c.Nodes[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, roots
}

// serveOn runs serve on a new loopback listener and returns its address.
func serveOn(t *testing.T, serve func(net.Listener) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serve(ln)
	return ln.Addr().String()
}

// A +detail address is the user's only when the directory sends it where
// it sends the user's mailbox: a separate mailbox (or forward) of that
// name belongs to someone else, and its owner may send as it.
func TestSubmissionDetailAddressOfAnotherAccount(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-sales", "sales@example.com")
	c.AddMailboxes("pw-eu", "sales+eu@example.com")
	c.Apply(&fsm.ForwardAdd{Address: "sales+fwd@example.com", Targets: []string{"other@elsewhere.net"}})
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])

	cl := authPlain(t, addr, "sales@example.com", "pw-sales", 235, "2.0.0")
	cl.expect("MAIL FROM:<sales+eu@example.com>", 553, "5.7.1")  // another mailbox
	cl.expect("MAIL FROM:<sales+fwd@example.com>", 553, "5.7.1") // another's forward
	cl.expect("MAIL FROM:<sales+news@example.com>", 250, "2.0.0")
	cl.expect("RCPT TO:<sales@example.com>", 250, "")
	r := cl.data("From: sales+eu@example.com\r\nSubject: x\r\n\r\nhi\r\n")
	checkReply(t, "DATA with From: another mailbox", r, 550, "5.7.1")

	eu := authPlain(t, addr, "sales+eu@example.com", "pw-eu", 235, "2.0.0")
	eu.expect("MAIL FROM:<sales+eu@example.com>", 250, "2.0.0")
}

// countingPasswords counts the password checks that reach the store.
type countingPasswords struct {
	PasswordChecker
	checks atomic.Int32
}

func (c *countingPasswords) Authenticate(ctx context.Context, user, password string) (node.Login, error) {
	c.checks.Add(1)
	return c.PasswordChecker.Authenticate(ctx, user, password)
}

// AUTH commands pipelined behind the third failure's 421 are not run:
// they check no password, and none of them logs the connection in.
// go-smtp has already buffered them when the 421 is sent, so without the
// session's own check each got a password check of its own, and the
// right password a 235 after the connection's last word.
func TestSubmissionAuthPipelinedPastTheLastFailure(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	store := &countingPasswords{PasswordChecker: c.Nodes[0]}
	addr := startSubmission(t, store, c.Nodes[0])

	cl := dial(t, addr)
	cl.ehlo()
	var batch strings.Builder
	for i := range 6 {
		batch.WriteString("AUTH PLAIN " + b64(fmt.Sprintf("\x00alice@example.com\x00guess%d", i)) + "\r\n")
	}
	batch.WriteString("AUTH PLAIN " + b64("\x00alice@example.com\x00pw-alice") + "\r\n")
	batch.WriteString("MAIL FROM:<alice@example.com>\r\n")
	cl.write(batch.String())
	checkReply(t, "first guess", cl.read(), 535, "5.7.8")
	checkReply(t, "second guess", cl.read(), 535, "5.7.8")
	checkReply(t, "third guess", cl.read(), 421, "4.7.0")
	for _, line := range cl.expectClosed() {
		if !strings.HasPrefix(line, "421 ") {
			t.Errorf("after the third failure's 421 the server said %q", line)
		}
	}
	if n := store.checks.Load(); n != maxAuthFailures {
		t.Errorf("%d password checks, want %d", n, maxAuthFailures)
	}
}

// A mailbox disabled while a submission connection of it is open (its
// password leaked, say) can send no more over it: the next MAIL gets 530
// 5.7.0 and the connection ends; a new login fails. Before, disabling stopped only new logins,
// and the open connection could go on sending for up to MaxSessionTime.
func TestSubmissionStopsWhenTheMailboxIsDisabled(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	c.AddMailboxes("pw-bob", "bob@example.com")
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])

	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")
	r := cl.transaction("alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\r\nSubject: one\r\n\r\nfirst\r\n")
	checkReply(t, "DATA before the disable", r, 250, "2.0.0")

	disabled := true
	c.Apply(&fsm.MailboxUpdate{Address: "alice@example.com", Disabled: &disabled})
	cl.expect("MAIL FROM:<alice@example.com>", 530, "5.7.0")
	cl.expectClosed()
	authPlain(t, addr, "alice@example.com", "pw-alice", 535, "5.7.8")
	if got := waitInbox(t, c.Nodes[0], "bob@example.com", 1); len(got) != 1 {
		t.Fatalf("bob holds %d messages, want the one sent before the disable", len(got))
	}
}

// A submission connection logged in with a password that has since been
// changed (through the admin API) can send no more over it: the next
// MAIL gets 530 5.7.0 saying so, and the connection ends. A change of
// quota ends nothing; a connection logged in with the new password, and
// another mailbox's, go on sending.
func TestSubmissionStopsWhenThePasswordIsChanged(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	c.AddMailboxes("pw-bob", "bob@example.com")
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])
	send := func(cl *tclient, from, to, subject string) {
		t.Helper()
		r := cl.transaction(from, []string{to}, "From: "+from+"\r\nSubject: "+subject+"\r\n\r\nx\r\n")
		checkReply(t, subject, r, 250, "2.0.0")
	}

	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")
	bob := authPlain(t, addr, "bob@example.com", "pw-bob", 235, "2.0.0")
	send(cl, "alice@example.com", "bob@example.com", "before")

	c.Admin(0, "POST", "/v1/mailboxes/alice@example.com/quota", `{"quota_bytes":1048576}`)
	send(cl, "alice@example.com", "bob@example.com", "after a quota change")

	c.Admin(0, "POST", "/v1/mailboxes/alice@example.com/password", `{"password":"pw-new"}`)
	r := cl.cmd("MAIL FROM:<alice@example.com>")
	checkReply(t, "MAIL after the password change", r, 530, "5.7.0")
	if !strings.Contains(r.msg, "password") {
		t.Errorf("reply %v does not say the password was changed", r)
	}
	cl.expectClosed()
	send(bob, "bob@example.com", "alice@example.com", "bob goes on")

	authPlain(t, addr, "alice@example.com", "pw-alice", 535, "5.7.8")
	fresh := authPlain(t, addr, "alice@example.com", "pw-new", 235, "2.0.0")
	send(fresh, "alice@example.com", "bob@example.com", "with the new password")
	if got := waitInbox(t, c.Nodes[0], "bob@example.com", 3); len(got) != 3 {
		t.Fatalf("bob holds %d messages, want 3", len(got))
	}
}
