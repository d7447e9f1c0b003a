package frontend_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// The graceful shutdown of IMAP and POP3 (imap_drain.go, pop3server.go),
// on a real one-node cluster.

// imapLine is a raw IMAP connection read line by line.
type imapLine struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func imapDialLine(t *testing.T, addr string) *imapLine {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &imapLine{t: t, conn: conn, r: bufio.NewReader(conn)}
	if g := c.line(); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

func (c *imapLine) send(s string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *imapLine) line() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// until reads lines up to and including the first with prefix.
func (c *imapLine) until(prefix string) string {
	c.t.Helper()
	for {
		if l := c.line(); strings.HasPrefix(l, prefix) {
			return l
		}
	}
}

// closed checks that the server closes the connection without another
// line.
func (c *imapLine) closed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := c.r.ReadString('\n')
	if err == nil || rest != "" {
		c.t.Fatalf("after BYE: %q, %v; want the connection closed", rest, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection not closed after BYE")
	}
}

func (c *imapLine) login(user string) {
	c.t.Helper()
	c.send("a LOGIN " + user + " " + imapPassword + "\r\n")
	if l := c.until("a "); !strings.HasPrefix(l, "a OK") {
		c.t.Fatalf("LOGIN: %q", l)
	}
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

	waiting := imapDialLine(t, addr)
	waiting.login(user)
	waiting.send("s SELECT INBOX\r\n")
	waiting.until("s OK")

	idling := imapDialLine(t, addr)
	idling.login(user)
	idling.send("s SELECT INBOX\r\n")
	idling.until("s OK")
	idling.send("i IDLE\r\n")
	idling.until("+")

	msg := "From: a@example.net\r\nSubject: drained\r\n\r\nkept\r\n"
	appending := imapDialLine(t, addr)
	appending.login(user)
	appending.send(fmt.Sprintf("p APPEND INBOX {%d}\r\n", len(msg)))
	appending.until("+")
	appending.send(msg[:10])

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	for _, s := range []*imapLine{waiting, idling} {
		if l := s.line(); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
			t.Fatalf("idle session got %q, want BYE", l)
		}
		s.closed()
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
	if l := appending.line(); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Fatalf("after the APPEND: %q, want BYE", l)
	}
	appending.closed()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return after the last session ended")
	}
	f, err := c.Nodes[0].Folder(context.Background(), user, "INBOX")
	if err != nil || f.Messages != 1 {
		t.Errorf("INBOX after the drained APPEND: %d messages, %v; want 1", f.Messages, err)
	}
}

// TestIMAPShutdownDeadline: a command still under way when the
// shutdown's context ends is cut off, and Shutdown says so.
func TestIMAPShutdownDeadline(t *testing.T) {
	user := "late@example.com"
	_, srv, addr := drainIMAPServer(t, user)
	slow := imapDialLine(t, addr)
	slow.login(user)
	slow.send("p APPEND INBOX {100}\r\n")
	slow.until("+")
	slow.send("half")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want the context's deadline", err)
	}
	slow.closed()
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

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
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
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Shutdown did not return after QUIT")
	}
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
