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

// A reply that cannot be sent in time (the client reads none) ends the
// connection: those replies are lost, so nothing the client sends after
// them can be answered in step. go-smtp reads on after a failed read,
// which once let the session go on; and part of a line read before the
// failure was a line of its own to go-smtp, so the gate had to split
// "NOOP " from the "BDAT 5" behind it. Now nothing sent after the
// failed reply is read as a command or a chunk, and nothing is stored.
func TestFailedReplyEndsTheConnection(t *testing.T) {
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
	// server's write of the three replies fails after WriteTimeout.
	if _, err := io.WriteString(client, "EHLO client.test\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<alice@example.com>\r\nNOOP "); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cfg.WriteTimeout * 3 / 2)
	go func() { _, _ = io.WriteString(client, "BDAT 5\r\nhelloBDAT 0 LAST\r\nQUIT\r\n") }()
	replies, err := io.ReadAll(client)
	if err != nil {
		t.Fatalf("%v after %q", err, replies)
	}
	// At most the reply to the cut "NOOP ", read before the failure
	// (hangUp: what was read is answered); nothing sent after it.
	if r := strings.TrimPrefix(string(replies), "501 5.5.2 Bad command\r\n"); r != "" {
		t.Errorf("the session went on after a reply it could not send: %q", replies)
	}
	if got := f.allDeliveries(); len(got) != 0 {
		t.Errorf("stored %d messages after a failed reply", len(got))
	}
}
