package frontend

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// pipeListener hands out one end of a net.Pipe, once.
type pipeListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = l.conn })
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *pipeListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *pipeListener) Addr() net.Addr { return l.conn.LocalAddr() }

// A reply that cannot be sent in time (the client reads none) fails the
// read that sends it; part of a line read before that failure is a line
// of its own to go-smtp, and the session goes on with the next line. The
// gate must split the octets there too: "BDAT 5" after "NOOP " is a BDAT
// whose chunk is "hello", not the argument of a NOOP followed by a
// command line "helloBDAT 0 LAST".
func TestGateLineCutByFailedReply(t *testing.T) {
	cfg := testConfig()
	cfg.WriteTimeout = 500 * time.Millisecond
	f := newFakeDeliverer()
	srv, err := NewSMTPServer(cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	server, client := net.Pipe()
	ln := &pipeListener{conn: server, closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = client.Close()
		_ = srv.Close()
		<-done
	})
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	greeting := make([]byte, 512)
	if _, err := client.Read(greeting); err != nil {
		t.Fatal(err)
	}
	// Pipelined, the last line cut short; no reply is read, so the
	// server's write of the three replies fails after WriteTimeout. The
	// client reads again before the reply to "NOOP " fails too.
	if _, err := io.WriteString(client, "EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nNOOP "); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cfg.WriteTimeout * 3 / 2)
	go func() { _, _ = io.WriteString(client, "BDAT 5\r\nhelloBDAT 0 LAST\r\nQUIT\r\n") }()
	replies, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("%v after %q", err, replies)
	}
	// The reply to "NOOP " (too short to be a command), then to BDAT 5.
	// (The message then fails: the failed read counts as a lost
	// connection to the chunks' reader, as it did before the gate.)
	if want := "501 5.5.2 Bad command\r\n250 2.0.0 Continue\r\n"; !strings.HasPrefix(string(replies), want) {
		t.Errorf("replies %q, want them to start %q", replies, want)
	}
	if _, got := splitTrace(t, f.lastDelivery(t).body); got != "hello" {
		t.Errorf("chunks read %q, want %q", got, "hello")
	}
}
