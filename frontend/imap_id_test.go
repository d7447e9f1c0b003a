package frontend_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/frontend/internal/testtls"
)

// TestIMAPID: ID (RFC 2971) is advertised in the greeting, in CAPABILITY
// and after LOGIN, and answered before and after login and in the
// selected state, where it polls like NOOP.
func TestIMAPID(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		t.Fatal(err)
	}
	if !c.Caps().Has(imap.CapID) {
		t.Errorf("greeting capabilities %v lack ID", c.Caps())
	}
	checkID(t, c, "before login")
	if err := c.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil || !caps.Has(imap.CapID) {
		t.Errorf("CAPABILITY after login: %v (%v), want ID", caps, err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	checkID(t, c, "selected")

	// A field without a value is sent as NIL (RFC 2971 section 4).
	nils := dialIMAPRaw(t, addr, "")
	nils.want(`ID ("name" "Mail" "version" "1.0" "os" NIL)`, `* ID ("name" "PowerMail"`)

	// Pipelined: ID, then an APPEND whose literal holds lines that look
	// like an ID command and a CAPABILITY response, then FETCH of it.
	// Neither the literal going in nor the one coming out is touched.
	r := dialIMAPRaw(t, addr, user)
	body := "Subject: lookalike\r\n\r\nx1 ID NIL\r\n* CAPABILITY IMAP4rev1\r\nx2 OK [CAPABILITY IMAP4rev1] hi\r\n"
	r.ok("SELECT INBOX")
	fmt.Fprintf(r.c, "p1 ID NIL\r\np2 APPEND INBOX {%d+}\r\n%s\r\np3 ID (\"name\" \"raw\")\r\n", len(body), body)
	got := map[string]string{}
	for len(got) < 3 {
		l := r.line()
		if tag, rest, ok := strings.Cut(l, " "); ok && tag != "*" {
			got[tag] = rest
		}
	}
	for tag, want := range map[string]string{"p1": "OK ID", "p2": "OK [APPENDUID", "p3": "OK ID"} {
		if !strings.HasPrefix(got[tag], want) {
			t.Errorf("%s: %q, want %s...", tag, got[tag], want)
		}
	}
	fmt.Fprintf(r.c, "f1 UID FETCH 1:* (BODY.PEEK[])\r\n")
	var literal strings.Builder
	for {
		l := r.line()
		if strings.HasPrefix(l, "f1 ") {
			break
		}
		if i := strings.LastIndex(l, "{"); i >= 0 && strings.HasSuffix(l, "}") {
			var n int
			fmt.Sscanf(l[i:], "{%d}", &n)
			buf := make([]byte, n)
			if _, err := io.ReadFull(r.r, buf); err != nil {
				t.Fatal(err)
			}
			literal.Write(buf)
		}
	}
	if literal.String() != body {
		t.Errorf("FETCH returned %q, want the appended %q", literal.String(), body)
	}
	if _, tagged := r.cmd(`ID ("name")`); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("ID with an odd list: %q, want BAD", tagged)
	}
	if _, tagged := r.cmd(`ID`); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("ID without arguments: %q, want BAD", tagged)
	}
}

// checkID sends ID and checks the server's answer.
func checkID(t *testing.T, c *imapclient.Client, when string) {
	t.Helper()
	id, err := c.ID(&imap.IDData{Name: "powermail-test", Version: "1"}).Wait()
	if err != nil {
		t.Fatalf("ID %s: %v", when, err)
	}
	if id == nil || id.Name != "PowerMail" {
		t.Errorf("ID %s: %+v, want name PowerMail", when, id)
	}
}

// TestIMAPIDOverTLS: ID and its capability work after STARTTLS and over
// implicit TLS, where the plaintext is only visible above the TLS layer.
func TestIMAPIDOverTLS(t *testing.T) {
	store, user := imapMemStore(t)
	plain, implicit, clientTLS := startIMAPTLS(t, store)
	st, err := imapclient.DialStartTLS(plain, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	caps, err := st.Capability().Wait()
	if err != nil || !caps.Has(imap.CapID) || caps.Has(imap.CapStartTLS) || !caps.Has("AUTH=PLAIN") {
		t.Errorf("CAPABILITY after STARTTLS: %v (%v), want ID and AUTH=PLAIN, no STARTTLS", caps, err)
	}
	checkID(t, st, "after STARTTLS")
	if err := st.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	checkID(t, st, "logged in after STARTTLS")

	it, err := imapclient.DialTLS(implicit, &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if err := it.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	checkID(t, it, "implicit TLS")
}

// TestIMAPStartTLSInjection: commands sent in plaintext after STARTTLS,
// before the handshake, are discarded (a man in the middle could have
// added them), and a second STARTTLS under TLS is refused.
func TestIMAPStartTLSInjection(t *testing.T) {
	store, user := imapMemStore(t)
	plain, _, clientTLS := startIMAPTLS(t, store)
	raw, br, l := dialIMAPGreeting(t, plain)
	if !strings.HasPrefix(l, "* OK") || !strings.Contains(l, " ID") {
		t.Fatalf("greeting %q", l)
	}
	fmt.Fprintf(raw, "s1 STARTTLS\r\ns2 LOGIN %q %q\r\n", user, imapPassword)
	if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, "s1 OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	tc := tls.Client(raw, clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tr := bufio.NewReader(tc)
	fmt.Fprintf(tc, "s3 CAPABILITY\r\ns4 STARTTLS\r\n")
	var lines []string
	for {
		l, err := tr.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", lines, err)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, "s4 ") {
			break
		}
	}
	all := strings.Join(lines, "")
	if strings.Contains(all, "s2 ") || !strings.Contains(all, "s3 OK") || strings.Contains(all, "s4 OK") {
		t.Errorf("under TLS got %q: want no reply to the injected s2, s3 OK, s4 refused", all)
	}
	if strings.Contains(lines[0], "STARTTLS") || !strings.Contains(lines[0], "AUTH=PLAIN") {
		t.Errorf("CAPABILITY under TLS %q: want AUTH=PLAIN and no STARTTLS", lines[0])
	}
}

// startIMAPTLS starts a server with TLS and no plaintext passwords, and
// returns its STARTTLS and implicit-TLS addresses and a client config.
// dialIMAPGreeting connects to an IMAP server at addr with a 10-second
// deadline and returns the connection, its reader and the greeting line.
func dialIMAPGreeting(t *testing.T, addr string) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(raw)
	l, _ := br.ReadString('\n')
	return raw, br, l
}

func startIMAPTLS(t *testing.T, store frontend.MailStore) (plain, implicit string, client *tls.Config) {
	t.Helper()
	tlsCfg, roots := testtls.Config(t)
	log := imapTestLogger()
	auth := frontend.NewAuthenticator(store, frontend.AuthConfig{}, log)
	srv := frontend.NewIMAPServer(store, auth, frontend.IMAPConfig{TLS: tlsCfg}, log)
	var addrs []string
	for _, serve := range []func(net.Listener) error{srv.Serve, srv.ServeTLS} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go serve(ln)
		addrs = append(addrs, ln.Addr().String())
	}
	t.Cleanup(func() { srv.Close() })
	return addrs[0], addrs[1], &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
}
