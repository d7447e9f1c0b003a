package frontend_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node/nodetest"
)

// Sessions the server ends on its own say why first: an untagged BYE
// (RFC 9051 §7.1.5) before the connection closes.

// byeCluster is an IMAP server with cfg on a real one-node cluster with
// mailbox user; idle, when not zero, is its autologout.
func byeCluster(t *testing.T, user string, cfg frontend.IMAPConfig, idle time.Duration) string {
	t.Helper()
	c := nodetest.Start(t, 1)
	c.AddMailboxes(imapPassword, user)
	srv := newIMAPTestServer(c.Nodes[0], cfg, true)
	if idle > 0 {
		frontend.SetIMAPIdleTimeoutForTest(srv, idle)
	}
	t.Cleanup(func() { srv.Close() })
	return listenIMAP(t, srv, false)
}

// untilClosed reads the lines the server sends until it closes the
// connection (10 s at most).
func (r *imapRaw) untilClosed() []string {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var lines []string
	for {
		l, err := r.r.ReadString('\n')
		if l != "" {
			lines = append(lines, l)
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("connection not closed; read %q", lines)
			}
			return lines
		}
	}
}

// TestIMAPAutologoutSaysBye: a client silent past PreAuthTimeout before
// login, or past IdleTimeout after it (waiting for a command or in
// IDLE), reads "* BYE" and then the end of the connection.
func TestIMAPAutologoutSaysBye(t *testing.T) {
	user := "sleepy@example.com"
	addr := byeCluster(t, user, frontend.IMAPConfig{PreAuthTimeout: 400 * time.Millisecond}, 400*time.Millisecond)

	anon := dialIMAPRaw(t, addr, "")
	if l := anon.line(); !strings.HasPrefix(l, "* BYE ") {
		t.Fatalf("silent before login: %q, want * BYE", l)
	}
	anon.closed()

	waiting := dialIMAPRaw(t, addr, user)
	waiting.ok("SELECT INBOX")
	if l := waiting.line(); !strings.HasPrefix(l, "* BYE Autologout") {
		t.Fatalf("silent after login: %q, want * BYE Autologout", l)
	}
	waiting.closed()

	idling := dialIMAPRaw(t, addr, user)
	idling.ok("SELECT INBOX")
	idling.send("i IDLE\r\n")
	idling.until("+")
	if l := idling.line(); !strings.HasPrefix(l, "* BYE Autologout") {
		t.Fatalf("silent in IDLE: %q, want * BYE Autologout", l)
	}
	idling.closed()
}

// TestIMAPOversizeNonSyncAppendEndsSession: an APPEND whose
// non-synchronizing message literal is over MaxAppendBytes is refused
// and the session ends with BYE [TOOBIG]: the octets the client sends
// on are a message, never commands.
func TestIMAPOversizeNonSyncAppendEndsSession(t *testing.T) {
	user := "big@example.com"
	addr := byeCluster(t, user, frontend.IMAPConfig{MaxAppendBytes: 1000}, 0)
	body := func(tag string) string {
		// Lines that are commands, then a header: the library
		// would run the first ones and give up at the header.
		b := fmt.Sprintf("%s LOGIN %q %q\r\n%s CREATE Evil%s\r\n%s LOGOUT\r\nSubject: x\r\n\r\n",
			tag, user, imapPassword, tag, tag, tag)
		return b + strings.Repeat("x", 2000-len(b)-2) + "\r\n"
	}
	for _, c := range []struct{ name, login, cmd string }{
		{"message literal on the first line", user, "a1 APPEND INBOX {2000+}\r\n"},
		{"after a mailbox literal", user, "a1 APPEND {5+}\r\nINBOX (\\Seen) {2000+}\r\n"},
		{"before login", "", "a1 APPEND INBOX {2000+}\r\n"},
		{"a length past int64", user, "a1 APPEND INBOX {99999999999999999999+}\r\n"},
	} {
		r := dialIMAPRaw(t, addr, c.login)
		tag := fmt.Sprintf("x%d", len(c.name))
		r.send("a0 NOOP\r\n" + c.cmd + body(tag))
		if _, st := r.tagged("a0"); !strings.HasPrefix(st, "OK") {
			t.Fatalf("%s: NOOP before it: %q", c.name, st)
		}
		got := r.untilClosed()
		if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "* BYE [TOOBIG]") {
			t.Fatalf("%s: the server sent %q, want a refusal, then * BYE [TOOBIG], then the end", c.name, got)
		}
		for _, l := range got {
			if strings.HasPrefix(l, tag) {
				t.Fatalf("%s: a line of the message was run as a command: %q", c.name, got)
			}
		}
	}
	r := dialIMAPRaw(t, addr, user)
	if u := r.ok(`LIST "" "Evil*"`); len(u) != 0 {
		t.Errorf("a command inside the refused message was executed: %q", u)
	}
}

// TestIMAPAutologoutInsideALiteralCloses: a client that goes silent in
// the middle of an APPEND's message gets the autologout BYE, and the
// connection closes then; the library, told of the end of input, reads
// again (to skip the rest of the literal, then for the CRLF and the next
// command), and each read must not wait out another IdleTimeout.
func TestIMAPAutologoutInsideALiteralCloses(t *testing.T) {
	user := "stalled@example.com"
	idle := 500 * time.Millisecond
	addr := byeCluster(t, user, frontend.IMAPConfig{}, idle)
	r := dialIMAPRaw(t, addr, user)
	r.send("a1 APPEND INBOX {100}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %q, want +", l)
	}
	r.send("Subject: stalled\r\n\r\n")
	start := time.Now()
	got := r.untilClosed()
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "* BYE Autologout") {
		t.Fatalf("silent inside a literal: the server sent %q, want * BYE Autologout, then the end", got)
	}
	if d := time.Since(start); d > 2*idle+time.Second/2 {
		t.Fatalf("the connection closed %v after the client went silent, want about one IdleTimeout (%v)", d, idle)
	}
}

// TestIMAPAutologoutNotDuringALongResponse: the autologout measures the
// client's silence while the server waits for a command, not the time
// the server takes to answer one: a FETCH that a slow reader keeps
// blocked for several IdleTimeouts completes, and the session goes on.
func TestIMAPAutologoutNotDuringALongResponse(t *testing.T) {
	user := "slowreader@example.com"
	idle := 400 * time.Millisecond
	addr := byeCluster(t, user, frontend.IMAPConfig{}, idle)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	msg := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("b", 998)+"\r\n", 8<<10) // 8 MiB
	r.send(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s\r\n", len(msg), msg))
	if _, st := r.tagged("a1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND: %q", st)
	}
	r.send("f1 FETCH 1 BODY[]\r\n")
	time.Sleep(4 * idle) // the server's writes block on the unread socket
	_ = r.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		l, err := r.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the FETCH: %v", err)
		}
		if strings.HasPrefix(l, "* BYE") {
			t.Fatalf("autologout while the server was answering: %q", l)
		}
		if strings.HasPrefix(l, "f1 ") {
			if !strings.HasPrefix(l, "f1 OK") {
				t.Fatalf("FETCH: %q", l)
			}
			break
		}
	}
	r.ok("NOOP")
}
