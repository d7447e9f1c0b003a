package frontend_test

import (
	"bufio"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/frontend/internal/testtls"
)

// lingerAttempts is how many times each endless line is sent (see
// the SMTP test's).
const lingerAttempts = 5

// dialLines connects to addr (over TLS with roots) and reads the
// greeting, which must start with greet.
func dialLines(t *testing.T, addr string, roots *x509.CertPool, greet string) (net.Conn, *bufio.Reader) {
	t.Helper()
	return frontend.DialGreeting(t, addr, roots, "127.0.0.1", greet)
}

// TestPOP3EndlessLineEndsWithoutReset: a client still sending its
// endless line got the -ERR and then a reset, since the server closed
// with the client's octets unread (RFC 1122 §4.2.2.13), and some client
// stacks drop a reply they have not read yet when the reset comes. The
// server now ends its side first and reads on: the client reads the
// -ERR and then the connection's orderly end, over TLS too.
func TestPOP3EndlessLineEndsWithoutReset(t *testing.T) {
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	tlsCfg, pool := testtls.Config(t)
	cfg := pop3TestConfig()
	cfg.TLS = tlsCfg
	_, plain := pop3Serve(t, f, pop3TestAuth(f, true), cfg, false)
	_, implicit := pop3Serve(t, f, pop3TestAuth(f, true), cfg, true)
	for _, c := range []struct {
		name  string
		addr  string
		roots *x509.CertPool
	}{{"plain", plain, nil}, {"implicit TLS", implicit, pool}} {
		for i := range lingerAttempts {
			conn, r := dialLines(t, c.addr, c.roots, "+OK ")
			t.Run(fmt.Sprintf("%s %d", c.name, i), func(t *testing.T) {
				frontend.EndlessEndsCleanly(t, conn, r, "NOOP ", "-ERR", pop3EndlessReply)
			})
		}
	}
}

// TestIMAPEndlessLineEndsWithoutReset: the same for IMAP's BYE [TOOBIG]
// to a command longer than the library reads, over implicit TLS too.
func TestIMAPEndlessLineEndsWithoutReset(t *testing.T) {
	store, user := imapMemStore(t)
	plain := startIMAP(t, store, frontend.IMAPConfig{}, true)
	_, implicit, client := startIMAPTLS(t, store)
	const bye = "* BYE [TOOBIG] Commands are limited to 51200 octets, literals aside\r\n"
	for _, c := range []struct {
		name  string
		addr  string
		roots *x509.CertPool
	}{{"plain", plain, nil}, {"implicit TLS", implicit, client.RootCAs}} {
		for i := range lingerAttempts {
			conn, r := dialLines(t, c.addr, c.roots, "* OK")
			fmt.Fprintf(conn, "a1 LOGIN %q %q\r\n", user, imapPassword)
			if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "a1 OK") {
				t.Fatalf("LOGIN: %q, %v", l, err)
			}
			t.Run(fmt.Sprintf("%s %d", c.name, i), func(t *testing.T) {
				frontend.EndlessEndsCleanly(t, conn, r, "a2 XFOO ", "* BYE", bye)
			})
		}
	}
}

// TestPOP3LingerIsBounded: a client that goes on sending after the -ERR
// and never closes is read for LingerTimeout at most, and the server's
// Close cuts a lingering close short.
func TestPOP3LingerIsBounded(t *testing.T) {
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	srv, addr := pop3Serve(t, f, pop3TestAuth(f, true), pop3TestConfig(), false)
	endless := "NOOP " + strings.Repeat("y", 70<<10)

	conn, r := dialLines(t, addr, nil, "+OK ")
	c, replied := frontend.TrickleAfter(t, conn, r, endless, "-ERR")
	ended, err := c.WriteFailed(frontend.LingerTimeout + 3*time.Second)
	took := time.Since(replied)
	if !ended || took < frontend.LingerTimeout-500*time.Millisecond {
		t.Errorf("a client sending on: writes failed %v (%v) after %v, want after about %v", ended, err, took.Round(time.Millisecond), frontend.LingerTimeout)
	}

	conn, r = dialLines(t, addr, nil, "+OK ")
	frontend.CloseCutsLinger(t, conn, r, endless, "-ERR", srv.Close)
}

// TestIMAPCloseCutsLinger: the server's Close cuts a lingering close
// short.
func TestIMAPCloseCutsLinger(t *testing.T) {
	store, user := imapMemStore(t)
	srv := newIMAPTestServer(store, frontend.IMAPConfig{}, true)
	addr := serveLoopback(t, srv)
	conn, r := dialLines(t, addr, nil, "* OK")
	fmt.Fprintf(conn, "a1 LOGIN %q %q\r\n", user, imapPassword)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("LOGIN: %q, %v", l, err)
	}
	frontend.CloseCutsLinger(t, conn, r, "a2 XFOO "+strings.Repeat("y", 60<<10), "* BYE", srv.Close)
}
