package frontend_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/frontend/internal/testtls"
	"powermail/node"
	"powermail/node/nodetest"
)

// The graceful shutdown of IMAP and POP3 (imap_drain.go, pop3server.go),
// on a real one-node cluster.

// send writes s as it is (no tag, no CRLF added).
func (r *imapRaw) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// until reads lines up to and including the first with prefix.
func (r *imapRaw) until(prefix string) string {
	r.t.Helper()
	for {
		if l := r.line(); strings.HasPrefix(l, prefix) {
			return l
		}
	}
}

// closed checks that the server closes the connection without another
// line.
func (r *imapRaw) closed() {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := r.r.ReadString('\n')
	if err == nil || rest != "" {
		r.t.Fatalf("after BYE: %q, %v; want the connection closed", rest, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		r.t.Fatal("connection not closed after BYE")
	}
}

// shutdownAsync runs srv.Shutdown with a 20 s context in the background
// and hands back its result.
func shutdownAsync(srv interface{ Shutdown(context.Context) error }) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	return done
}

// wantShutdown waits for shutdownAsync's result, which must be nil; why
// says what it should have followed.
func wantShutdown(t *testing.T, done <-chan error, why string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal(why)
	}
}

// byeThenClosed reads the drain's BYE and then the end of the
// connection; format (with %q for a wrong line) says when.
func (r *imapRaw) byeThenClosed(format string) {
	r.t.Helper()
	if l := r.line(); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		r.t.Fatalf(format, l)
	}
	r.closed()
}

// drainIMAPServer is an IMAP server on a one-node cluster with mailbox
// user.
func drainIMAPServer(t *testing.T, user string) (*nodetest.Cluster, *frontend.IMAPServer, string) {
	t.Helper()
	c := nodetest.Start(t, 1)
	c.AddMailboxes(imapPassword, user)
	srv := newIMAPTestServer(c.Nodes[0], frontend.IMAPConfig{}, true)
	t.Cleanup(func() { srv.Close() })
	return c, srv, listenIMAP(t, srv, false)
}

// TestIMAPShutdownAtCommandBoundaries: a session waiting for a command
// and one in IDLE get BYE at once; an APPEND under way finishes, gets its
// OK, then BYE, and its message is stored; nothing new is accepted.
func TestIMAPShutdownAtCommandBoundaries(t *testing.T) {
	user := "drain@example.com"
	c, srv, addr := drainIMAPServer(t, user)

	waiting := dialIMAPRaw(t, addr, user)
	waiting.ok("SELECT INBOX")

	idling := dialIMAPRaw(t, addr, user)
	idling.ok("SELECT INBOX")
	idling.send("i IDLE\r\n")
	idling.until("+")

	msg := "From: a@example.net\r\nSubject: drained\r\n\r\nkept\r\n"
	appending := dialIMAPRaw(t, addr, user)
	appending.send(fmt.Sprintf("p APPEND INBOX {%d}\r\n", len(msg)))
	appending.until("+")
	appending.send(msg[:10])

	start := time.Now()
	done := shutdownAsync(srv)
	for _, s := range []*imapRaw{waiting, idling} {
		s.byeThenClosed("idle session got %q, want BYE")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("idle sessions ended after %v", d)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("a new connection was accepted during the shutdown")
	}

	appending.send(msg[10:] + "\r\n")
	if l := appending.until("p "); !strings.HasPrefix(l, "p OK") {
		t.Fatalf("APPEND during the shutdown: %q", l)
	}
	appending.byeThenClosed("after the APPEND: %q, want BYE")
	wantShutdown(t, done, "Shutdown did not return after the last session ended")
	f, err := c.Nodes[0].Folder(context.Background(), user, "INBOX")
	if err != nil || f.Messages != 1 {
		t.Errorf("INBOX after the drained APPEND: %d messages, %v; want 1", f.Messages, err)
	}
}

// TestIMAPShutdownDeadline: a command still under way when the
// shutdown's context ends is cut off, with a BYE (RFC 9051 §7.1.5), and
// Shutdown says so.
func TestIMAPShutdownDeadline(t *testing.T) {
	user := "late@example.com"
	_, srv, addr := drainIMAPServer(t, user)
	slow := dialIMAPRaw(t, addr, user)
	slow.send("p APPEND INBOX {100}\r\n")
	slow.until("+")
	slow.send("half")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline", err)
	}
	slow.byeThenClosed("cut off at the shutdown's deadline: %q, want BYE")
}

// TestIMAPCloseSaysBye: Close, which does not wait for command
// boundaries, still ends each session with a BYE; a session the library
// ended with its own BYE (LOGOUT) gets no second one.
func TestIMAPCloseSaysBye(t *testing.T) {
	user := "closed@example.com"
	_, srv, addr := drainIMAPServer(t, user)
	waiting := dialIMAPRaw(t, addr, user)
	waiting.ok("SELECT INBOX")
	idling := dialIMAPRaw(t, addr, user)
	idling.send("i IDLE\r\n")
	idling.until("+")
	anon := dialIMAPRaw(t, addr, "")
	leaving := dialIMAPRaw(t, addr, user)
	leaving.send("l LOGOUT\r\n")
	leaving.until("* BYE")
	leaving.until("l OK")

	srv.Close()
	for _, s := range []*imapRaw{waiting, idling, anon} {
		s.byeThenClosed("session at Close got %q, want BYE")
	}
	leaving.closed()
}

// TestPOP3ShutdownLetsSessionsQuit: a session not logged in is closed at
// once; a logged-in one runs on, and its QUIT commits its deletions.
func TestPOP3ShutdownLetsSessionsQuit(t *testing.T) {
	c := nodetest.Start(t, 1)
	user := "pop@example.com"
	c.AddMailboxes("pw", user)
	c.Deliver(0, "Subject: one\r\n\r\n1\r\n", user)
	c.Deliver(0, "Subject: two\r\n\r\n2\r\n", user)
	n := c.Nodes[0]
	srv, addr := pop3Serve(t, n, pop3TestAuth(n, true), pop3TestConfig(), false)

	anon := pop3Dial(t, addr)
	in := pop3Dial(t, addr)
	in.login(user, "pw")
	in.ok("DELE 1")

	done := shutdownAsync(srv)
	if rest := anon.expectClosed(); rest != "" {
		t.Errorf("session not logged in got %q before closing", rest)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("a new connection was accepted during the shutdown")
	}
	in.ok("DELE 2")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a logged-in session was open", err)
	default:
	}
	in.quit()
	wantShutdown(t, done, "Shutdown did not return after QUIT")
	f, err := n.Folder(context.Background(), user, "INBOX")
	if err != nil || f.Messages != 0 {
		t.Errorf("INBOX after QUIT during the shutdown: %d messages, %v; want 0", f.Messages, err)
	}
}

// TestPOP3ShutdownDeadline: a logged-in session still open when the
// context ends is cut off without committing its deletions.
func TestPOP3ShutdownDeadline(t *testing.T) {
	c := nodetest.Start(t, 1)
	user := "popcut@example.com"
	c.AddMailboxes("pw", user)
	c.Deliver(0, "Subject: one\r\n\r\n1\r\n", user)
	n := c.Nodes[0]
	srv, addr := pop3Serve(t, n, pop3TestAuth(n, true), pop3TestConfig(), false)
	in := pop3Dial(t, addr)
	in.login(user, "pw")
	in.ok("DELE 1")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline", err)
	}
	in.expectClosed()
	f, err := n.Folder(context.Background(), user, "INBOX")
	if err != nil || f.Messages != 1 {
		t.Errorf("INBOX after a cut session: %d messages, %v; want 1", f.Messages, err)
	}
}

// waitRefused waits until addr no longer accepts connections: the
// shutdown has begun (it closes the listeners first).
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the listener still accepts connections")
}

// TestIMAPShutdownDuringStartTLS: a client whose STARTTLS was answered
// just before the shutdown completes its handshake and then gets the BYE,
// as any session waiting for a command does.
func TestIMAPShutdownDuringStartTLS(t *testing.T) {
	store, _ := imapMemStore(t)
	tlsCfg, roots := testtls.Config(t)
	srv := newIMAPTestServer(store, frontend.IMAPConfig{TLS: tlsCfg}, false)
	t.Cleanup(func() { srv.Close() })
	addr := listenIMAP(t, srv, false)

	c := dialIMAPRaw(t, addr, "")
	c.send("a STARTTLS\r\n")
	if l := c.until("a "); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	done := shutdownAsync(srv)
	waitRefused(t, addr)
	time.Sleep(50 * time.Millisecond) // the sessions have been woken

	tc := tls.Client(c.c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake after STARTTLS during the shutdown: %v", err)
	}
	s := &imapRaw{t: t, c: tc, r: bufio.NewReader(tc)}
	s.byeThenClosed("after STARTTLS during the shutdown: %q, want BYE")
	wantShutdown(t, done, "Shutdown did not return after the session ended")
}

// TestIMAPShutdownAfterRefusedLiteral: a synchronizing literal the
// server refused (NO [TOOBIG], no "+") is never sent, so the client's
// next octets are commands again; the drain still finds its command
// boundary and ends the session at once.
func TestIMAPShutdownAfterRefusedLiteral(t *testing.T) {
	store, user := imapMemStore(t)
	srv := newIMAPTestServer(store, frontend.IMAPConfig{MaxAppendBytes: 100}, true)
	t.Cleanup(func() { srv.Close() })
	addr := listenIMAP(t, srv, false)
	c := dialIMAPRaw(t, addr, user)
	c.send("p APPEND INBOX {1000}\r\n")
	if l := c.until("p "); !strings.HasPrefix(l, "p NO [TOOBIG]") {
		t.Fatalf("APPEND over the limit: %q", l)
	}
	c.send("n NOOP\r\n")
	c.until("n OK")

	done := shutdownAsync(srv)
	c.byeThenClosed("after a refused literal: %q, want BYE")
	wantShutdown(t, done, "Shutdown did not return after the session ended")
}

// TestIMAPShutdownImplicitTLS: a session under implicit TLS is drained
// like a plaintext one, and Shutdown of a server with TLS configured
// (whose STARTTLS instance serves an internal listener) returns cleanly.
func TestIMAPShutdownImplicitTLS(t *testing.T) {
	store, user := imapMemStore(t)
	tlsCfg, roots := testtls.Config(t)
	srv := newIMAPTestServer(store, frontend.IMAPConfig{TLS: tlsCfg}, false)
	t.Cleanup(func() { srv.Close() })
	addr := listenIMAP(t, srv, true)

	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &imapRaw{t: t, c: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	c.ok(fmt.Sprintf("LOGIN %q %q", user, imapPassword))
	done := shutdownAsync(srv)
	c.byeThenClosed("got %q, want BYE")
	wantShutdown(t, done, "Shutdown did not return after the session ended")
}

// gate holds a store call until release is closed; started says that
// one is held.
type gate struct{ started, release chan struct{} }

func newGate() gate { return gate{started: make(chan struct{}, 1), release: make(chan struct{})} }

func (g gate) hold() {
	g.started <- struct{}{}
	<-g.release
}

// slowLogins holds every password check at its gate.
type slowLogins struct {
	frontend.MailStore
	gate
}

func (s *slowLogins) Authenticate(ctx context.Context, user, password string) (node.Login, error) {
	s.hold()
	return s.MailStore.Authenticate(ctx, user, password)
}

// slowMaildrop holds every maildrop snapshot (View) at its gate.
type slowMaildrop struct {
	frontend.MailStore
	gate
}

func (s *slowMaildrop) View(ctx context.Context, addr, name string) (node.FolderView, error) {
	s.hold()
	return s.MailStore.View(ctx, addr, name)
}

// passDuringShutdown logs ann in on a POP3 server over store, starts a
// shutdown while g holds the login, lets it go on, and checks that the
// login is told the server is going, not +OK on a maildrop the closing
// connection cannot use.
func passDuringShutdown(t *testing.T, store frontend.MailStore, g gate) {
	t.Helper()
	srv, addr := pop3Serve(t, store, pop3TestAuth(store, true), pop3TestConfig(), false)
	c := pop3Dial(t, addr)
	c.ok("USER ann@example.com")
	c.send("PASS pw")
	<-g.started
	done := shutdownAsync(srv)
	time.Sleep(100 * time.Millisecond) // the drain has marked the idle sessions
	close(g.release)
	if l := c.readLine(); !strings.HasPrefix(l, "-ERR [SYS/TEMP]") {
		t.Fatalf("PASS during the shutdown: %q, want -ERR [SYS/TEMP]", l)
	}
	c.expectClosed()
	wantShutdown(t, done, "Shutdown did not return after the session ended")
}

// TestPOP3ShutdownDuringLogin: a shutdown that begins during the
// password check.
func TestPOP3ShutdownDuringLogin(t *testing.T) {
	fake := newPOP3Fake()
	fake.addUser("ann@example.com", "pw")
	store := &slowLogins{MailStore: fake, gate: newGate()}
	passDuringShutdown(t, store, store.gate)
}

// TestPOP3ShutdownDuringMaildropOpen: the lock and the snapshot are part
// of the login too; and the lock is given back.
func TestPOP3ShutdownDuringMaildropOpen(t *testing.T) {
	fake := newPOP3Fake()
	fake.addUser("ann@example.com", "pw")
	store := &slowMaildrop{MailStore: fake, gate: newGate()}
	passDuringShutdown(t, store, store.gate)
	if fake.holder("ann@example.com") != "" {
		t.Error("the maildrop lock is still held")
	}
}
