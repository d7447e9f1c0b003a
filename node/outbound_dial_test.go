package node

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"powermail/fsm"
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

// queueNode is a node with only a queue configuration (a one-second dial
// timeout, hostname mx.powermail.test, tweak's changes), enough to dial
// and pool outbound connections.
func queueNode(tweak func(*QueueConfig)) *Node {
	n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.cfg.Queue = QueueConfig{DialTimeout: time.Second, Hostname: "mx.powermail.test"}
	if tweak != nil {
		tweak(&n.cfg.Queue)
	}
	n.cfg.Queue.setDefaults()
	return n
}

// dialTo dials a sink as the queue does; tweak adjusts the queue config.
func dialTo(t *testing.T, addr string, relay bool, tweak func(*QueueConfig)) (*pooledClient, error) {
	n := queueNode(tweak)
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

// A relay that must be reached over TLS, or that gets our credentials,
// is never sent anything in plaintext: the password would cross a path
// where STARTTLS can be stripped.
func TestRelayRequiringTLSGetsNoPlaintext(t *testing.T) {
	for name, tweak := range map[string]func(*QueueConfig){
		"required":    func(q *QueueConfig) { q.RelayRequireTLS = true },
		"credentials": func(q *QueueConfig) { q.RelayUser, q.RelayPassword = "relayuser", "s3cret" },
	} {
		t.Run(name, func(t *testing.T) {
			var w wire
			s := startSinkWith(t, func(srv *smtp.Server) { srv.AllowInsecureAuth = true }, w.listener)
			_, err := dialTo(t, s.addr, true, tweak)
			if !errors.Is(err, ErrTLSRequired) {
				t.Fatalf("dial: %v, want ErrTLSRequired", err)
			}
			if conns, sent := w.get(); conns != 1 || strings.Contains(sent, "MAIL") || strings.Contains(sent, "AUTH") {
				t.Errorf("%d connections, sent %q", conns, sent)
			}
		})
	}
}

// fakeMX serves every connection with reply, which is given each command
// line and writes the answer.
func fakeMX(t *testing.T, reply func(w io.Writer, cmd string)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, "220 fake.test ESMTP\r\n")
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					reply(c, strings.TrimSpace(line))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A server that answers with an endless reply fails the session once it
// has sent maxReplyBytes, instead of filling memory (and, as an error
// text, the raft log and a bounce).
func TestOutboundEndlessReplyIsCut(t *testing.T) {
	addr := fakeMX(t, func(w io.Writer, cmd string) {
		switch {
		case strings.HasPrefix(cmd, "RCPT"):
			line := "550-5.1.1 " + strings.Repeat("A", 1000) + "\r\n"
			for {
				if _, err := io.WriteString(w, line); err != nil {
					return
				}
			}
		case strings.HasPrefix(cmd, "EHLO"):
			io.WriteString(w, "250-fake.test\r\n250 PIPELINING\r\n")
		default:
			io.WriteString(w, "250 ok\r\n")
		}
	})
	pc, err := dialTo(t, addr, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.c.Mail("a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	err = pc.c.Rcpt("b@fake.test", nil)
	if !errors.Is(err, errReplyTooLong) {
		t.Fatalf("RCPT: %v, want the reply cut", err)
	}
	if out, cerr := replyOutcomes(err, []string{"b@fake.test"}); out != nil || cerr == nil {
		t.Fatalf("outcomes %v, %v: want a connection failure", out, cerr)
	}
}

// Recorded errors are bounded, and a failure's status has class 5 even
// when the server's text names a 2.x.y.
func TestQueueErrorTextAndStatus(t *testing.T) {
	out := outcomesOf(fsm.OutcomePerm, "550 "+strings.Repeat("é", 1000), []string{"b@x.test"})
	if len(out[0].Error) > maxErrorText+3 || !utf8.ValidString(out[0].Error) {
		t.Errorf("recorded error of %d bytes (valid UTF-8: %v)", len(out[0].Error), utf8.ValidString(out[0].Error))
	}
	for text, want := range map[string]string{
		"550 Rejected: 2.16.5.10 is listed": "5.0.0",
		"550 5.1.1 no such user":            "5.1.1",
		"451 4.7.1 try later":               "5.7.1",
	} {
		if got := dsnStatus(text, dsnFailed); got != want {
			t.Errorf("dsnStatus(%q, failed) = %s, want %s", text, got, want)
		}
	}
	if got := dsnStatus("550 Rejected: 2.16.5.10 is listed", dsnDelayed); got != "4.0.0" {
		t.Errorf("delayed: %s", got)
	}
}

// A server that takes DATA and then stops reading fails the write of
// the message within DataTimeout (RFC 5321 §4.5.3.2.5: a timeout per
// data block, not only one for the whole attempt).
func TestOutboundStalledDataTimesOut(t *testing.T) {
	stall := make(chan struct{})
	addr := fakeMX(t, func(w io.Writer, cmd string) {
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			io.WriteString(w, "250-fake.test\r\n250 8BITMIME\r\n")
		case cmd == "DATA":
			io.WriteString(w, "354 go ahead\r\n")
			<-stall // reads no more
		default:
			io.WriteString(w, "250 ok\r\n")
		}
	})
	t.Cleanup(func() { close(stall) })
	pc, err := dialTo(t, addr, false, func(q *QueueConfig) { q.DataTimeout = 300 * time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.c.Mail("a@example.com", nil); err != nil {
		t.Fatal(err)
	}
	if err := pc.c.Rcpt("b@fake.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := pc.c.Data()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		line := []byte(strings.Repeat("x", 998) + "\r\n")
		for range 1 << 16 { // 64 MiB: far past what the sockets buffer
			if _, err := w.Write(line); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write to a server that stopped reading: %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		pc.conn.Close()
		t.Fatal("the write still waits on a server that stopped reading")
	}
}

// refusingAuth is a sink backend whose sessions offer AUTH PLAIN and
// refuse every credential.
type refusingAuth struct{ s *sink }

func (b refusingAuth) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return refusingAuthSession{&sinkSession{s: b.s, c: c}}, nil
}

type refusingAuthSession struct{ *sinkSession }

func (refusingAuthSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (refusingAuthSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, _, _ string) error {
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "credentials invalid"}
	}), nil
}

// A relay that gives TLS and then refuses our credentials is reported
// as refusing them, not as offering no STARTTLS: the operator must fix
// the password, not the relay's TLS.
func TestRelayRefusedCredentialsAreNotATLSFailure(t *testing.T) {
	ca := testcerts.NewCA(t, "relay CA")
	certFile, keyFile, _ := ca.Issue(t, t.TempDir(), "relay.test")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{mode: "ok", release: make(chan struct{})}
	srv := smtp.NewServer(refusingAuth{s})
	srv.Domain = "relay.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, err = dialTo(t, ln.Addr().String(), true, func(q *QueueConfig) {
		q.RelayUser, q.RelayPassword = "relayuser", "wrong"
		q.TLS = &tls.Config{RootCAs: ca.Pool(), ServerName: "relay.test"}
	})
	if err == nil || errors.Is(err, ErrTLSRequired) || !strings.Contains(err.Error(), "535") {
		t.Fatalf("dial: %v, want the relay's 535 and no TLS failure", err)
	}
}

// Closing the pool (node shutdown) says QUIT to each idle connection but
// does not wait a command timeout for an answer: a server that has gone
// silent while idle must not hold the node's Close for minutes.
func TestPoolCloseDoesNotWaitForASilentServer(t *testing.T) {
	silent := make(chan struct{})
	t.Cleanup(func() { close(silent) })
	addr := fakeMX(t, func(w io.Writer, cmd string) {
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			io.WriteString(w, "250-fake.test\r\n250 8BITMIME\r\n")
		case cmd == "QUIT":
			<-silent // never answers
		default:
			io.WriteString(w, "250 ok\r\n")
		}
	})
	n := queueNode(nil)
	p := newSMTPPool(n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var pcs []*pooledClient
	for range 2 {
		pc, err := p.get(ctx, addr, false, false)
		if err != nil {
			t.Fatal(err)
		}
		pcs = append(pcs, pc)
	}
	for _, pc := range pcs {
		p.put(pc, true) // idle now
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { p.closeIdle(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("closing the pool waits on a silent server")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("closing the pool took %v", took)
	}
}
