package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/node/testcerts"
)

// wire records what a sink's clients send on every connection, and how
// many connections they open.
type wire struct {
	mu    sync.Mutex
	conns int
	sent  bytes.Buffer
}

func (w *wire) listener(ln net.Listener) net.Listener { return &wireListener{Listener: ln, w: w} }

func (w *wire) get() (int, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.conns, w.sent.String()
}

type wireListener struct {
	net.Listener
	w *wire
}

func (l *wireListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.w.mu.Lock()
		l.w.conns++
		l.w.mu.Unlock()
		c = &wireConn{Conn: c, w: l.w}
	}
	return c, err
}

type wireConn struct {
	net.Conn
	w *wire
}

func (c *wireConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.w.mu.Lock()
	c.w.sent.Write(p[:k])
	c.w.mu.Unlock()
	return k, err
}

// sinkTLS is a server certificate for sinks.
func sinkTLS(t *testing.T) *tls.Config {
	certFile, keyFile, _ := testcerts.NewCA(t, "sink CA").Issue(t, t.TempDir(), "sink.test")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// dialTo dials a sink as the queue does; tweak adjusts the queue config.
func dialTo(t *testing.T, addr string, relay bool, tweak func(*QueueConfig)) (*pooledClient, error) {
	n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.cfg.Queue = QueueConfig{DialTimeout: time.Second, Hostname: "mx.powermail.test"}
	if tweak != nil {
		tweak(&n.cfg.Queue)
	}
	n.cfg.Queue.setDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := n.dialSMTP(ctx, addr, relay)
	if err == nil {
		t.Cleanup(func() { pc.c.Close() })
	}
	return pc, err
}

// A server that offers STARTTLS gets TLS on the first connection, and
// is greeted with this host's name before TLS and after.
func TestOutboundStartTLS(t *testing.T) {
	var w wire
	s := startSinkWith(t, func(srv *smtp.Server) { srv.TLSConfig = sinkTLS(t) }, w.listener)
	pc, err := dialTo(t, s.addr, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := pc.c.TLSConnectionState(); !ok {
		t.Error("no TLS")
	}
	if err := pc.c.Noop(); err != nil {
		t.Fatal(err)
	}
	conns, sent := w.get()
	if conns != 1 {
		t.Errorf("%d connections, want 1", conns)
	}
	if !bytes.HasPrefix([]byte(sent), []byte("EHLO mx.powermail.test\r\nSTARTTLS\r\n")) {
		t.Errorf("before TLS the client sent %q", sent[:min(len(sent), 60)])
	}
}

// Opportunistic TLS: a server that does not offer STARTTLS, or whose
// handshake fails, gets the mail in plaintext on a new connection.
func TestOutboundFallsBackToPlaintext(t *testing.T) {
	for name, c := range map[string]struct {
		setup func(*smtp.Server)
		tweak func(*QueueConfig)
	}{
		"not offered": {setup: func(*smtp.Server) {}},
		"handshake fails": {
			setup: func(srv *smtp.Server) { srv.TLSConfig = sinkTLS(t); srv.TLSConfig.MinVersion = tls.VersionTLS13 },
			tweak: func(q *QueueConfig) { q.TLS = &tls.Config{MaxVersion: tls.VersionTLS12} },
		},
	} {
		t.Run(name, func(t *testing.T) {
			var w wire
			s := startSinkWith(t, c.setup, w.listener)
			pc, err := dialTo(t, s.addr, false, c.tweak)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := pc.c.TLSConnectionState(); ok {
				t.Error("TLS after all")
			}
			if err := pc.c.Noop(); err != nil {
				t.Fatal(err)
			}
			if conns, _ := w.get(); conns != 2 {
				t.Errorf("%d connections, want 2", conns)
			}
		})
	}
}

// A relay that must be reached over TLS is never sent anything in
// plaintext.
func TestRelayRequiringTLSGetsNoPlaintext(t *testing.T) {
	var w wire
	s := startSinkWith(t, func(*smtp.Server) {}, w.listener)
	_, err := dialTo(t, s.addr, true, func(q *QueueConfig) { q.RelayRequireTLS = true })
	if !errors.Is(err, ErrTLSRequired) {
		t.Fatalf("dial: %v, want ErrTLSRequired", err)
	}
	if conns, sent := w.get(); conns != 1 || bytes.Contains([]byte(sent), []byte("MAIL")) {
		t.Errorf("%d connections, sent %q", conns, sent)
	}
}
