package frontend_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
)

// pop3TestConfig has short timeouts for tests.
func pop3TestConfig() frontend.POP3Config {
	return frontend.POP3Config{
		Hostname:       "pop.test",
		IdleTimeout:    10 * time.Second,
		WriteTimeout:   5 * time.Second,
		BackendTimeout: 5 * time.Second,
		MaxConnsPerIP:  50,
	}
}

// pop3TestAuth allows plaintext (tests speak plain TCP unless they test
// TLS) and keeps failure delays tiny.
func pop3TestAuth(store frontend.PasswordChecker, allowInsecure bool) *frontend.Authenticator {
	return frontend.NewAuthenticator(store, frontend.AuthConfig{
		AllowInsecure: allowInsecure,
		FailureDelay:  time.Millisecond,
		MaxDelay:      2 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))
}

// pop3Serve serves on a fresh loopback port (implicit TLS with tlsOn)
// and closes the server when the test ends, checking that Serve returns
// ErrServerClosed.
func pop3Serve(t testing.TB, store frontend.MailStore, auth *frontend.Authenticator, cfg frontend.POP3Config, implicitTLS bool) (*frontend.POP3Server, string) {
	t.Helper()
	return pop3ServeLogging(t, store, auth, cfg, implicitTLS, slog.New(slog.DiscardHandler))
}

// pop3ServeLogging is pop3Serve with the server logging to log.
func pop3ServeLogging(t testing.TB, store frontend.MailStore, auth *frontend.Authenticator, cfg frontend.POP3Config, implicitTLS bool, log *slog.Logger) (*frontend.POP3Server, string) {
	t.Helper()
	srv := frontend.NewPOP3Server(store, auth, cfg, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		if implicitTLS {
			done <- srv.ServeTLS(ln)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, frontend.ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return srv, ln.Addr().String()
}

// pop3Client speaks raw POP3 lines over one connection.
type pop3Client struct {
	t    testing.TB
	conn net.Conn
	tp   *textproto.Conn
}

// pop3Dial connects and reads the greeting.
func pop3Dial(t testing.TB, addr string) *pop3Client {
	t.Helper()
	c := pop3DialRaw(t, addr)
	if g := c.readLine(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

func pop3DialRaw(t testing.TB, addr string) *pop3Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return pop3Wrap(t, conn)
}

func pop3Wrap(t testing.TB, conn net.Conn) *pop3Client {
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &pop3Client{t: t, conn: conn, tp: textproto.NewConn(conn)}
	t.Cleanup(func() { conn.Close() })
	return c
}

// pop3DialTLS connects with implicit TLS and reads the greeting.
func pop3DialTLS(t testing.TB, addr string, roots *x509.CertPool) *pop3Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("dial TLS: %v", err)
	}
	c := pop3Wrap(t, conn)
	if g := c.readLine(); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// send writes one command line.
func (c *pop3Client) send(line string) {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// readLine reads one line, which must end in CRLF, and returns it
// without.
func (c *pop3Client) readLine() string {
	c.t.Helper()
	line, err := c.tp.R.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (partial %q)", err, line)
	}
	if !strings.HasSuffix(line, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", line)
	}
	return strings.TrimSuffix(line, "\r\n")
}

// cmd sends line and returns the first reply line.
func (c *pop3Client) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.readLine()
}

// ok sends line and fails unless the reply is +OK.
func (c *pop3Client) ok(line string) string {
	c.t.Helper()
	r := c.cmd(line)
	if r != "+OK" && !strings.HasPrefix(r, "+OK ") {
		c.t.Fatalf("%s: got %q, want +OK", pop3Redact(line), r)
	}
	return r
}

// fail sends line and fails unless the reply is -ERR, with the RFC 2449
// response code if code is not empty.
func (c *pop3Client) fail(line, code string) string {
	c.t.Helper()
	r := c.cmd(line)
	pop3CheckErr(c.t, line, r, code)
	return r
}

func pop3CheckErr(t testing.TB, line, r, code string) {
	t.Helper()
	if r != "-ERR" && !strings.HasPrefix(r, "-ERR ") {
		t.Fatalf("%s: got %q, want -ERR", pop3Redact(line), r)
	}
	if code != "" && !strings.HasPrefix(r, "-ERR ["+code+"]") {
		t.Fatalf("%s: got %q, want -ERR [%s]", pop3Redact(line), r, code)
	}
}

func pop3Redact(line string) string {
	if strings.HasPrefix(strings.ToUpper(line), "PASS ") {
		return "PASS ***"
	}
	return line
}

// readMulti reads the rest of a multi-line response and returns its
// content with the byte-stuffing removed, each line ending in CRLF.
func (c *pop3Client) readMulti() string {
	c.t.Helper()
	var b strings.Builder
	for {
		line := c.readLine()
		if line == "." {
			return b.String()
		}
		b.WriteString(strings.TrimPrefix(line, "."))
		b.WriteString("\r\n")
	}
}

// multi sends line, expects +OK and returns the status line and the
// content.
func (c *pop3Client) multi(line string) (string, string) {
	c.t.Helper()
	status := c.ok(line)
	return status, c.readMulti()
}

// multiLines is multi split into lines.
func (c *pop3Client) multiLines(line string) []string {
	c.t.Helper()
	_, body := c.multi(line)
	if body == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")
}

// login runs USER and PASS and expects success.
func (c *pop3Client) login(user, password string) string {
	c.t.Helper()
	c.ok("USER " + user)
	return c.ok("PASS " + password)
}

// quit sends QUIT, expects +OK and the connection to close.
func (c *pop3Client) quit() {
	c.t.Helper()
	c.ok("QUIT")
	c.expectClosed()
}

// expectClosed reads until the server closes and returns what came
// before; it fails if the server does not close within the deadline.
func (c *pop3Client) expectClosed() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(c.tp.R)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection not closed; got %q", rest)
	}
	return string(rest)
}

// startTLS sends STLS and upgrades the connection.
func (c *pop3Client) startTLS(roots *x509.CertPool) {
	c.t.Helper()
	c.ok("STLS")
	tc := tls.Client(c.conn, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.tp = textproto.NewConn(tc)
}

func pop3Plain(authzid, user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(authzid + "\x00" + user + "\x00" + password))
}

// pop3Eventually polls cond until it holds or 5 s pass.
func pop3Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
