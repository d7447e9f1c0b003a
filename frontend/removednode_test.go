package frontend

import (
	"bufio"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"powermail/node"
	"powermail/node/nodetest"
)

// removedPrompt is how soon a removed node must answer: well below every
// timeout the servers below are given, so that an answer within it is
// the node refusing, not a timeout running out.
const removedPrompt = 2 * time.Second

// lineConn speaks raw protocol lines (SMTP, IMAP, POP3) and times each
// exchange, so that a test sees every byte and how long it took.
type lineConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialLines(t *testing.T, addr string) (*lineConn, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &lineConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	_ = conn.SetDeadline(time.Now().Add(time.Minute))
	return c, c.line()
}

func (c *lineConn) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// send writes line and returns the last line of its reply: the first
// line that starts with final ("" for the first line at all), or an
// IMAP BYE; and how long the reply took.
func (c *lineConn) send(line, final string) (string, time.Duration) {
	c.t.Helper()
	start := time.Now()
	_ = c.conn.SetDeadline(start.Add(time.Minute))
	if _, err := c.conn.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("write %q: %v", line, err)
	}
	for {
		l := c.line()
		if final == "" || strings.HasPrefix(l, final) || strings.HasPrefix(l, "* BYE") {
			return l, time.Since(start)
		}
	}
}

// want sends line and fails unless the reply's last line starts with one
// of prefixes and came within removedPrompt.
func (c *lineConn) want(what, line, final string, prefixes ...string) string {
	c.t.Helper()
	got, took := c.send(line, final)
	ok := false
	for _, p := range prefixes {
		ok = ok || strings.HasPrefix(got, p)
	}
	if !ok || took > removedPrompt {
		c.t.Errorf("%s: %q answered %q after %v, want one of %q within %v", what, line, got, took.Round(time.Millisecond), prefixes, removedPrompt)
	}
	return got
}

// A node removed from the cluster while it runs gets no more entries
// and knows no leader: reads and writes through it can never complete.
// Its mail protocols must say so at once with temporary replies (the
// client then tries another node), not wait out their timeouts, and
// never acknowledge a write; sessions opened before the removal too.
func TestRemovedNodeMailProtocolsAnswerPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := nodetest.Start(t, 3)
	c.AddMailboxes("pw", "alice@example.com", "bob@example.com", "carol@example.com")
	c.Deliver(0, "Subject: one\r\n\r\none\r\n", "alice@example.com", "bob@example.com", "carol@example.com")
	var leader, gone *node.Node
	for _, n := range c.Nodes {
		if n.IsLeader() {
			leader = n
		} else {
			gone = n
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := gone.Barrier(ctx); err != nil {
		t.Fatal(err)
	}

	// The servers' own timeouts are the defaults (30 s and more).
	smtpCfg := testConfig()
	smtpCfg.ResolveTimeout, smtpCfg.DeliverTimeout = DefaultResolveTimeout, DefaultDeliverTimeout
	_, smtpAddr := startServer(t, smtpCfg, gone)
	log := slog.New(slog.DiscardHandler)
	auth := NewAuthenticator(gone, AuthConfig{AllowInsecure: true, FailureDelay: time.Millisecond}, log)
	subCfg := smtpCfg
	subCfg.Submission, subCfg.Auth = true, auth
	_, subAddr := startServer(t, subCfg, gone)
	smtpCfg.LMTP = true
	_, lmtpAddr := startServer(t, smtpCfg, gone)
	imapSrv := NewIMAPServer(gone, auth, IMAPConfig{PollInterval: time.Second}, log)
	imapAddr := serveLoopback(t, imapSrv.Serve, imapSrv.Close)
	// A server whose sessions do not look again at their login: its
	// commands must refuse of themselves.
	lateSrv := NewIMAPServer(gone, auth, IMAPConfig{AccountCheckInterval: time.Hour}, log)
	lateAddr := serveLoopback(t, lateSrv.Serve, lateSrv.Close)
	pop3Srv := NewPOP3Server(gone, auth, POP3Config{Hostname: "pop.test"}, log)
	pop3Addr := serveLoopback(t, pop3Srv.Serve, pop3Srv.Close)

	// Sessions opened while it was a member.
	smtps := []struct {
		name, addr, hello string
		old               *lineConn
	}{{"SMTP", smtpAddr, "EHLO", nil}, {"LMTP", lmtpAddr, "LHLO", nil}, {"submission", subAddr, "EHLO", nil}}
	plain := "AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice@example.com\x00pw"))
	for i, p := range smtps {
		s, _ := dialLines(t, p.addr)
		s.want(p.name+" hello before", p.hello+" client.test", "250 ", "250 ")
		from := "s@remote.test"
		if p.name == "submission" {
			s.want("submission AUTH before", plain, "", "235 ")
			from = "alice@example.com"
		}
		s.want(p.name+" MAIL before", "MAIL FROM:<"+from+">", "", "250 ")
		s.want(p.name+" RCPT before", "RCPT TO:<alice@example.com>", "", "250 ")
		smtps[i].old = s
	}
	imapOld, _ := dialLines(t, imapAddr)
	imapLate, _ := dialLines(t, lateAddr)
	imapLate.want("IMAP login before", "a LOGIN bob@example.com pw", "a ", "a OK")
	imapLate.want("IMAP select before", "b SELECT INBOX", "b ", "b OK")
	imapOld.want("IMAP login before", "a LOGIN bob@example.com pw", "a ", "a OK")
	oldLogin := time.Now()
	imapOld.want("IMAP select before", "b SELECT INBOX", "b ", "b OK")
	imapIdle, _ := dialLines(t, imapAddr)
	imapIdle.want("IMAP login before", "a LOGIN carol@example.com pw", "a ", "a OK")
	imapIdle.want("IMAP select before", "b SELECT INBOX", "b ", "b OK")
	imapIdle.want("IMAP IDLE before", "c IDLE", "+", "+")
	popOld, _ := dialLines(t, pop3Addr)
	popOld.want("POP3 user before", "USER carol@example.com", "", "+OK")
	popOld.want("POP3 pass before", "PASS pw", "", "+OK")

	if err := leader.Remove(ctx, gone.ID(), false); err != nil {
		t.Fatal(err)
	}
	// It follows the old leader for up to a heartbeat timeout; from then
	// on it knows no leader.
	for deadline := time.Now().Add(10 * time.Second); gone.LeaderID() != ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still follows %s", gone.ID(), gone.LeaderID())
		}
	}

	for _, p := range smtps {
		// A transaction whose RCPT was accepted before the removal: its
		// data cannot be committed.
		p.old.want(p.name+" DATA", "DATA", "", "354 ")
		p.old.want(p.name+" data", "From: <alice@example.com>\r\nSubject: x\r\n\r\nx\r\n.", "", "421 4.3.0", "451 4.3.0")
		// A new one is refused at RCPT, before the client sends the
		// message, known address (found in its state) or not.
		s, _ := dialLines(t, p.addr)
		s.want(p.name+" hello", p.hello+" client.test", "250 ", "250 ")
		if p.name == "submission" {
			s.want("submission AUTH", plain, "", "454 4.7.0")
			continue
		}
		s.want(p.name+" MAIL", "MAIL FROM:<s@remote.test>", "", "250 ", "421 4.3.0", "451 4.3.0")
		s.want(p.name+" RCPT known", "RCPT TO:<alice@example.com>", "", "421 4.3.0", "451 4.3.0")
		s.want(p.name+" RCPT unknown", "RCPT TO:<new@example.com>", "", "421 4.3.0", "451 4.3.0")
	}

	// IDLE would wait for ever for news that never reach it: the session
	// ends, and the client reconnects (to a member, /readyz permitting).
	start := time.Now()
	_ = imapIdle.conn.SetDeadline(start.Add(time.Minute))
	if l := imapIdle.line(); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") || time.Since(start) > removedPrompt {
		t.Errorf("IMAP IDLE after the removal: %q after %v, want * BYE [UNAVAILABLE] within %v", l, time.Since(start), removedPrompt)
	}
	// A session's next command ends it the same way (once its login is
	// due to be checked again: DefaultAccountCheckInterval).
	time.Sleep(time.Until(oldLogin.Add(DefaultAccountCheckInterval + 100*time.Millisecond)))
	imapOld.want("IMAP FETCH after", "c FETCH 1 (FLAGS BODY[])", "c ", "* BYE [UNAVAILABLE]")
	imapLate.want("IMAP FETCH after", "d FETCH 1 (FLAGS BODY[])", "d ", "d NO [UNAVAILABLE]", "* BYE")
	imapLate.want("IMAP STORE after", `e STORE 1 +FLAGS (\Seen)`, "e ", "e NO [UNAVAILABLE]", "* BYE")
	imapLate.want("IMAP APPEND after", "f APPEND INBOX {5+}\r\nhello", "f ", "f NO [UNAVAILABLE]", "* BYE")
	imapLate.want("IMAP SELECT after", "g SELECT INBOX", "g ", "g NO [UNAVAILABLE]", "* BYE")
	imapNew, _ := dialLines(t, imapAddr)
	imapNew.want("IMAP LOGIN", "a LOGIN alice@example.com pw", "a ", "a NO [UNAVAILABLE]", "* BYE")

	// A session that marked a message deleted cannot commit it.
	if got := popOld.want("POP3 DELE", "DELE 1", "", "+OK", "-ERR [SYS/TEMP]"); strings.HasPrefix(got, "+OK") {
		popOld.want("POP3 QUIT", "QUIT", "", "-ERR [SYS/TEMP]")
	}
	popNew, _ := dialLines(t, pop3Addr)
	popNew.want("POP3 USER", "USER alice@example.com", "", "+OK")
	popNew.want("POP3 PASS", "PASS pw", "", "-ERR [SYS/TEMP]")

	start = time.Now()
	resp, err := http.Get("http://" + gone.AdminAddr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || time.Since(start) > removedPrompt {
		t.Errorf("/readyz of the removed node: %d after %v", resp.StatusCode, time.Since(start))
	}

	// Nothing written through it was stored: no delivery (alice), no
	// APPEND (bob), no deletion (carol).
	for _, box := range []string{"alice@example.com", "bob@example.com", "carol@example.com"} {
		if v, err := leader.View(ctx, box, "INBOX"); err != nil || len(v.Messages) != 1 {
			t.Errorf("%s INBOX on the leader: %d messages, %v; want the one delivered before", box, len(v.Messages), err)
		}
	}
}

// serveLoopback serves on a loopback port until the test ends.
func serveLoopback(t *testing.T, serve func(net.Listener) error, closeSrv func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go serve(ln)
	t.Cleanup(func() { closeSrv() })
	return ln.Addr().String()
}
