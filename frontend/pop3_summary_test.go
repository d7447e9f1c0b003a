package frontend_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/node/nodetest"
)

// lockedLog is a log the server's goroutines write while the test reads.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// line waits up to 5 s for a line holding every one of parts.
func (l *lockedLog) line(t *testing.T, parts ...string) string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		l.mu.Lock()
		text := l.b.String()
		l.mu.Unlock()
	lines:
		for _, ln := range strings.Split(text, "\n") {
			for _, p := range parts {
				if !strings.Contains(ln, p) {
					continue lines
				}
			}
			return ln
		}
	}
	t.Fatalf("no log line with %q", parts)
	return ""
}

// A POP3 session that logged in ends with one line saying what it did,
// as Dovecot's logout line does: the maildrop's size, what was retrieved
// and deleted, and whether QUIT committed the deletions. A session cut
// off commits none (RFC 1939 §6), and says so: the line an
// administrator looks for when a user says mail went missing.
func TestPOP3SessionSummaryLogged(t *testing.T) {
	c := nodetest.Start(t, 1)
	const box = "summary@example.com"
	c.AddMailboxes("pw", box)
	for _, s := range []string{"one", "two", "three"} {
		c.Deliver(0, "Subject: "+s+"\r\n\r\n"+s+"\r\n", box)
	}
	var log lockedLog
	_, addr := pop3ServeLogging(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), pop3TestConfig(), false,
		slog.New(slog.NewTextHandler(&log, nil)))

	cl := pop3Dial(t, addr)
	cl.login(box, "pw")
	cl.multi("RETR 1")
	cl.ok("DELE 2")
	cl.quit()
	log.line(t, "pop3: session ended", "user="+box, "messages=3", "retrieved=1", "deleted=1", "committed=true")

	cl = pop3Dial(t, addr)
	cl.login(box, "pw")
	cl.multi("RETR 1")
	cl.ok("DELE 1")
	cl.conn.Close()
	log.line(t, "pop3: session ended", "messages=2", "retrieved=1", "deleted=1", "committed=false")
}
