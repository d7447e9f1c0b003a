package frontend_test

import (
	"errors"
	"fmt"
	"net"
	"powermail/frontend/internal/testtls"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/node"
)

// Protocol tests against an in-memory MailStore. The same behaviour
// against a real three-node cluster is in pop3_cluster_test.go.

const pop3User = "alice@example.com"

func pop3FakeServer(t *testing.T, cfg frontend.POP3Config) (*pop3Fake, string) {
	t.Helper()
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	_, addr := pop3Serve(t, f, pop3TestAuth(f, true), cfg, false)
	return f, addr
}

func TestPOP3Transaction(t *testing.T) {
	f, addr := pop3FakeServer(t, pop3TestConfig())
	m1 := "Subject: one\r\n\r\nfirst\r\n"
	m2 := "Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n"
	u1, u2 := f.add(pop3User, m1), f.add(pop3User, m2)

	c := pop3Dial(t, addr)
	caps := c.multiLines("CAPA")
	for _, want := range []string{"TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"} {
		if !slices.Contains(caps, want) {
			t.Errorf("CAPA %q lacks %q", caps, want)
		}
	}
	if slices.Contains(caps, "STLS") {
		t.Errorf("CAPA offers STLS without TLS: %q", caps)
	}
	c.fail("STAT", "")
	if got := c.login(pop3User, "secret"); got != fmt.Sprintf("+OK maildrop has 2 messages (%d octets)", len(m1)+len(m2)) {
		t.Errorf("PASS reply %q", got)
	}
	if got := c.ok("STAT"); got != fmt.Sprintf("+OK 2 %d", len(m1)+len(m2)) {
		t.Errorf("STAT %q", got)
	}
	if got := c.multiLines("LIST"); !slices.Equal(got, []string{fmt.Sprintf("1 %d", len(m1)), fmt.Sprintf("2 %d", len(m2))}) {
		t.Errorf("LIST %q", got)
	}
	if got := c.ok("LIST 2"); got != fmt.Sprintf("+OK 2 %d", len(m2)) {
		t.Errorf("LIST 2 %q", got)
	}
	if got := c.multiLines("UIDL"); !slices.Equal(got, []string{fmt.Sprintf("1 1234.%d", u1), fmt.Sprintf("2 1234.%d", u2)}) {
		t.Errorf("UIDL %q", got)
	}
	if got := c.ok("UIDL 1"); got != fmt.Sprintf("+OK 1 1234.%d", u1) {
		t.Errorf("UIDL 1 %q", got)
	}
	status, body := c.multi("RETR 2")
	if body != m2 || status != fmt.Sprintf("+OK %d octets", len(m2)) {
		t.Errorf("RETR 2: %q %q", status, body)
	}
	for n, want := range map[int]string{
		0:  "Subject: two\r\nX: y\r\n\r\n",
		2:  "Subject: two\r\nX: y\r\n\r\nl1\r\nl2\r\n",
		99: m2,
	} {
		if _, got := c.multi(fmt.Sprintf("TOP 2 %d", n)); got != want {
			t.Errorf("TOP 2 %d = %q, want %q", n, got, want)
		}
	}
	c.fail("RETR 3", "")
	c.fail("RETR 0", "")
	c.fail("RETR x", "")
	c.fail("TOP 1", "")
	c.fail("TOP 1 -1", "")
	c.ok("DELE 1")
	c.fail("DELE 1", "")
	c.fail("RETR 1", "")
	c.fail("LIST 1", "")
	if got := c.multiLines("LIST"); !slices.Equal(got, []string{fmt.Sprintf("2 %d", len(m2))}) {
		t.Errorf("LIST after DELE %q", got)
	}
	if got := c.ok("STAT"); got != fmt.Sprintf("+OK 1 %d", len(m2)) {
		t.Errorf("STAT after DELE %q", got)
	}
	c.ok("RSET")
	if got := c.ok("STAT"); got != fmt.Sprintf("+OK 2 %d", len(m1)+len(m2)) {
		t.Errorf("STAT after RSET %q", got)
	}
	c.ok("NOOP")
	c.ok("DELE 2")
	c.fail("USER x", "")
	if caps := c.multiLines("CAPA"); slices.Contains(caps, "USER") {
		t.Errorf("CAPA after login offers USER: %q", caps)
	}
	c.quit()
	if got := f.uids(pop3User); !slices.Equal(got, []uint32{u1}) {
		t.Errorf("after QUIT inbox has %v, want [%d]", got, u1)
	}
	if h := f.holder(pop3User); h != "" {
		t.Errorf("lock still held by %q after QUIT", h)
	}
}

// RETR sends the stored octets, dot-stuffed, with every line ending in
// CRLF, and ends with ".": a body line that is a lone dot cannot end the
// response early.
func TestPOP3DotStuffing(t *testing.T) {
	f, addr := pop3FakeServer(t, pop3TestConfig())
	for _, stored := range []string{
		"Subject: d\r\n\r\n.\r\n..two\r\n.x\r\nend\r\n",
		"a\r\n.",                                 // no final line end: one is added
		"a\n.\nb\r\n",                            // a bare LF is a line end
		"a\r.\r\n",                               // a bare CR is not
		"",                                       // empty message
		"\r\n\r\n.\r\n",                          // empty header section
		strings.Repeat(".", 40000) + "\r\n.\r\n", // a line longer than one read
	} {
		f.add(pop3User, stored)
	}
	c := pop3Dial(t, addr)
	c.login(pop3User, "secret")
	want := []string{
		"Subject: d\r\n\r\n.\r\n..two\r\n.x\r\nend\r\n",
		"a\r\n.\r\n",
		"a\r\n.\r\nb\r\n",
		"a\r.\r\n",
		"",
		"\r\n\r\n.\r\n",
		strings.Repeat(".", 40000) + "\r\n.\r\n",
	}
	for i, w := range want {
		// Read the raw wire form too: every dot at a line start is doubled.
		c.send(fmt.Sprintf("RETR %d", i+1))
		if r := c.readLine(); !strings.HasPrefix(r, "+OK ") {
			t.Fatalf("RETR %d: %q", i+1, r)
		}
		var lines []string
		for {
			l := c.readLine()
			if l == "." {
				break
			}
			lines = append(lines, l)
		}
		var got strings.Builder
		for _, l := range lines {
			if strings.HasPrefix(l, ".") {
				if !strings.HasPrefix(l, "..") {
					t.Errorf("RETR %d: line %q is not dot-stuffed", i+1, l)
				}
				l = l[1:]
			}
			got.WriteString(l + "\r\n")
		}
		if got.String() != w {
			t.Errorf("RETR %d = %q, want %q", i+1, got.String(), w)
		}
	}
	// TOP counts lines after the header section's blank line.
	if _, got := c.multi("TOP 1 2"); got != "Subject: d\r\n\r\n.\r\n..two\r\n" {
		t.Errorf("TOP 1 2 = %q", got)
	}
	if _, got := c.multi("TOP 6 1"); got != "\r\n\r\n" {
		t.Errorf("TOP 6 1 = %q", got)
	}
}

// A dropped connection commits no deletion and releases the lock.
func TestPOP3DropKeepsDeletions(t *testing.T) {
	f, addr := pop3FakeServer(t, pop3TestConfig())
	u := f.add(pop3User, "Subject: x\r\n\r\nx\r\n")
	c := pop3Dial(t, addr)
	c.login(pop3User, "secret")
	c.ok("DELE 1")
	c.conn.Close()
	pop3Eventually(t, "lock release", func() bool { return f.holder(pop3User) == "" })
	if got := f.uids(pop3User); !slices.Equal(got, []uint32{u}) {
		t.Errorf("inbox %v after drop, want [%d]", got, u)
	}
	if len(f.expunges) != 0 {
		t.Errorf("Expunge called %v", f.expunges)
	}
}

// The idle timer logs out silently and commits nothing (RFC 1939 §3).
func TestPOP3IdleTimeout(t *testing.T) {
	cfg := pop3TestConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	f, addr := pop3FakeServer(t, cfg)
	f.add(pop3User, "x\r\n")
	c := pop3Dial(t, addr)
	c.login(pop3User, "secret")
	c.ok("DELE 1")
	start := time.Now()
	if rest := c.expectClosed(); rest != "" {
		t.Errorf("autologout sent %q", rest)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("autologout took %v", d)
	}
	pop3Eventually(t, "lock release", func() bool { return f.holder(pop3User) == "" })
	if len(f.uids(pop3User)) != 1 {
		t.Error("idle session deleted a message")
	}
}

func TestPOP3Lock(t *testing.T) {
	f, addr := pop3FakeServer(t, pop3TestConfig())
	f.add(pop3User, "x\r\n")
	a := pop3Dial(t, addr)
	a.login(pop3User, "secret")
	if h := f.holder(pop3User); !strings.HasPrefix(h, "pop3/pop.test/") {
		t.Errorf("holder %q", h)
	}
	b := pop3Dial(t, addr)
	b.ok("USER " + pop3User)
	b.fail("PASS secret", "IN-USE")
	b.fail("STAT", "") // still in AUTHORIZATION
	a.quit()
	b.login(pop3User, "secret")
	b.ok("STAT")
}

func TestPOP3BackendFailures(t *testing.T) {
	f, addr := pop3FakeServer(t, pop3TestConfig())
	f.add(pop3User, "Subject: x\r\n\r\n"+strings.Repeat("0123456789\r\n", 10000))
	unavailable := fmt.Errorf("no leader: %w", node.ErrUnavailable)

	t.Run("auth unavailable", func(t *testing.T) {
		f.set(func(f *pop3Fake) { f.authErr = unavailable })
		defer f.set(func(f *pop3Fake) { f.authErr = nil })
		c := pop3Dial(t, addr)
		c.ok("USER " + pop3User)
		c.fail("PASS secret", "SYS/TEMP")
	})
	t.Run("auth unexpected", func(t *testing.T) {
		f.set(func(f *pop3Fake) { f.authErr = errors.New("boom") })
		defer f.set(func(f *pop3Fake) { f.authErr = nil })
		c := pop3Dial(t, addr)
		c.fail("AUTH PLAIN "+pop3Plain("", pop3User, "secret"), "SYS/TEMP")
	})
	t.Run("wrong password", func(t *testing.T) {
		c := pop3Dial(t, addr)
		c.ok("USER " + pop3User)
		c.fail("PASS wrong", "AUTH")
		c.fail("PASS secret", "") // USER again first
		c.login(pop3User, "secret")
	})
	t.Run("lock unavailable", func(t *testing.T) {
		f.set(func(f *pop3Fake) { f.lockErr = unavailable })
		defer f.set(func(f *pop3Fake) { f.lockErr = nil })
		c := pop3Dial(t, addr)
		c.ok("USER " + pop3User)
		c.fail("PASS secret", "SYS/TEMP")
	})
	t.Run("view fails, lock released", func(t *testing.T) {
		f.set(func(f *pop3Fake) { f.viewErr = unavailable })
		c := pop3Dial(t, addr)
		c.ok("USER " + pop3User)
		c.fail("PASS secret", "SYS/TEMP")
		if h := f.holder(pop3User); h != "" {
			t.Errorf("lock held by %q after failed View", h)
		}
		f.set(func(f *pop3Fake) { f.viewErr = fmt.Errorf("gone: %w", node.ErrNoFolder) })
		c.ok("USER " + pop3User)
		c.fail("PASS secret", "SYS/PERM")
		f.set(func(f *pop3Fake) { f.viewErr = nil })
		c.login(pop3User, "secret")
		c.quit()
	})
	t.Run("open body fails", func(t *testing.T) {
		c := pop3Dial(t, addr)
		c.login(pop3User, "secret")
		f.set(func(f *pop3Fake) { f.openErr = unavailable })
		c.fail("RETR 1", "SYS/TEMP")
		f.set(func(f *pop3Fake) { f.openErr = nil })
		c.multi("RETR 1") // the session goes on
		c.quit()
	})
	t.Run("body of a message expunged elsewhere", func(t *testing.T) {
		// Another session expunged it after this one's snapshot and
		// its body was collected: retrying cannot help, so no
		// [SYS/TEMP], which would have the client retry for ever.
		gone := f.add(pop3User, "Subject: gone\r\n\r\ngone\r\n")
		c := pop3Dial(t, addr)
		c.login(pop3User, "secret")
		if _, err := f.Expunge(t.Context(), pop3User, "INBOX", []uint32{gone}, false); err != nil {
			t.Fatal(err)
		}
		f.set(func(f *pop3Fake) { f.openErr = fmt.Errorf("%w: body collected", node.ErrBodyUnavailable) })
		defer f.set(func(f *pop3Fake) { f.openErr = nil })
		for _, cmd := range []string{"RETR 2", "TOP 2 0"} {
			if r := c.fail(cmd, ""); strings.Contains(r, "[") {
				t.Errorf("%s of the expunged message: %q, want -ERR without a response code", cmd, r)
			}
		}
		c.fail("RETR 1", "SYS/TEMP") // still there: the store's error stands
		c.quit()
	})
	t.Run("open body times out", func(t *testing.T) {
		cfg := pop3TestConfig()
		cfg.BackendTimeout = 100 * time.Millisecond
		_, addr := pop3Serve(t, f, pop3TestAuth(f, true), cfg, false)
		c := pop3Dial(t, addr)
		c.login(pop3User, "secret")
		f.set(func(f *pop3Fake) { f.openDelay = 5 * time.Second })
		defer f.set(func(f *pop3Fake) { f.openDelay = 0 })
		start := time.Now()
		c.fail("RETR 1", "SYS/TEMP")
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("RETR took %v with a 100ms backend timeout", d)
		}
	})
	t.Run("body fails midway", func(t *testing.T) {
		f.set(func(f *pop3Fake) { f.bodyErrAfter = 50000 })
		defer f.set(func(f *pop3Fake) { f.bodyErrAfter = 0 })
		c := pop3Dial(t, addr)
		c.login(pop3User, "secret")
		c.send("RETR 1")
		rest := c.expectClosed()
		if !strings.HasPrefix(rest, "+OK ") || strings.HasSuffix(rest, "\r\n.\r\n") {
			t.Errorf("truncated RETR ended with a terminator: ...%q", rest[max(0, len(rest)-40):])
		}
		pop3Eventually(t, "lock release", func() bool { return f.holder(pop3User) == "" })
	})
	t.Run("expunge fails", func(t *testing.T) {
		f.set(func(f *pop3Fake) { f.expungeErr = unavailable })
		defer f.set(func(f *pop3Fake) { f.expungeErr = nil })
		c := pop3Dial(t, addr)
		c.login(pop3User, "secret")
		c.ok("DELE 1")
		c.fail("QUIT", "SYS/TEMP")
		c.expectClosed()
		if len(f.uids(pop3User)) != 1 {
			t.Error("message gone after failed expunge")
		}
		pop3Eventually(t, "lock release", func() bool { return f.holder(pop3User) == "" })
	})
}

func TestPOP3AuthPlain(t *testing.T) {
	_, addr := pop3FakeServer(t, pop3TestConfig())
	c := pop3Dial(t, addr)
	if got := c.multiLines("AUTH"); !slices.Equal(got, []string{"PLAIN"}) {
		t.Errorf("AUTH lists %q", got)
	}
	c.fail("AUTH CRAM-MD5", "")
	c.fail("AUTH PLAIN "+pop3Plain("", pop3User, "wrong"), "AUTH")
	c.fail("AUTH PLAIN "+pop3Plain("bob@example.com", pop3User, "secret"), "AUTH")
	c.fail("AUTH PLAIN !!!", "AUTH")
	c.fail("AUTH PLAIN =", "AUTH")
	c.fail("AUTH PLAIN "+pop3Plain("", "", "secret"), "AUTH")
	// Continuation, cancelled.
	if r := c.cmd("AUTH PLAIN"); r != "+ " {
		t.Fatalf("AUTH PLAIN challenge %q", r)
	}
	c.fail("*", "")
	// Continuation, completed.
	if r := c.cmd("auth plain"); r != "+ " {
		t.Fatalf("AUTH PLAIN challenge %q", r)
	}
	c.ok(pop3Plain(pop3User, pop3User, "secret"))
	c.ok("STAT")
	c.quit()

	c = pop3Dial(t, addr)
	c.ok("AUTH PLAIN " + pop3Plain("", "ALICE@example.com", "secret"))
	c.quit()
}

// Without a certificate and without AllowInsecure, a password in the
// clear is refused without sending the client to an STLS the port does
// not offer.
func TestPOP3InsecureAuthRefusedWithoutSTLS(t *testing.T) {
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	_, addr := pop3Serve(t, f, pop3TestAuth(f, false), pop3TestConfig(), false)
	c := pop3Dial(t, addr)
	if caps := c.multiLines("CAPA"); slices.Contains(caps, "STLS") || slices.Contains(caps, "USER") {
		t.Errorf("CAPA without a certificate: %q", caps)
	}
	for _, line := range []string{"USER " + pop3User, "AUTH PLAIN " + pop3Plain("", pop3User, "secret")} {
		if r := c.fail(line, "AUTH"); strings.Contains(r, "STLS") {
			t.Errorf("%s: %q names STLS, which is not offered", strings.Fields(line)[0], r)
		}
	}
	c.quit()
}

// Without TLS and without AllowInsecure, no password is taken in the
// clear; STLS opens the way (RFC 2595).
func TestPOP3InsecureAuthRefused(t *testing.T) {
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	tlsCfg, roots := testtls.Config(t)
	cfg := pop3TestConfig()
	cfg.TLS = tlsCfg
	_, addr := pop3Serve(t, f, pop3TestAuth(f, false), cfg, false)

	c := pop3Dial(t, addr)
	caps := c.multiLines("CAPA")
	if slices.Contains(caps, "USER") || slices.Contains(caps, "SASL PLAIN") || !slices.Contains(caps, "STLS") {
		t.Errorf("CAPA without TLS: %q", caps)
	}
	c.fail("USER "+pop3User, "AUTH")
	c.fail("PASS secret", "")
	c.fail("AUTH PLAIN "+pop3Plain("", pop3User, "secret"), "AUTH")
	c.startTLS(roots)
	caps = c.multiLines("CAPA")
	if !slices.Contains(caps, "USER") || !slices.Contains(caps, "SASL PLAIN") || slices.Contains(caps, "STLS") {
		t.Errorf("CAPA under TLS: %q", caps)
	}
	c.fail("STLS", "")
	c.login(pop3User, "secret")
	c.quit()

	// Commands pipelined behind STLS were sent in the clear: the server
	// must not run them (RFC 2595 §4 / CVE-2011-0411 class).
	c = pop3Dial(t, addr)
	if _, err := c.conn.Write([]byte("STLS\r\nCAPA\r\n")); err != nil {
		t.Fatal(err)
	}
	if rest := c.expectClosed(); rest != "+OK begin TLS negotiation\r\n" {
		t.Errorf("after injected STLS got %q", rest)
	}
}

func TestPOP3ImplicitTLS(t *testing.T) {
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	f.add(pop3User, "x\r\n")
	tlsCfg, roots := testtls.Config(t)
	cfg := pop3TestConfig()
	cfg.TLS = tlsCfg
	_, addr := pop3Serve(t, f, pop3TestAuth(f, false), cfg, true)
	c := pop3DialTLS(t, addr, roots)
	if caps := c.multiLines("CAPA"); slices.Contains(caps, "STLS") || !slices.Contains(caps, "USER") {
		t.Errorf("CAPA under implicit TLS: %q", caps)
	}
	c.login(pop3User, "secret")
	if _, body := c.multi("RETR 1"); body != "x\r\n" {
		t.Errorf("RETR %q", body)
	}
	c.quit()

	srv := frontend.NewPOP3Server(f, pop3TestAuth(f, false), pop3TestConfig(), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeTLS(ln); err == nil {
		t.Error("ServeTLS without TLS config succeeded")
	}
}

func TestPOP3LongLinesAndBadCommands(t *testing.T) {
	cfg := pop3TestConfig()
	cfg.MaxBadCommands = 4
	_, addr := pop3FakeServer(t, cfg)
	c := pop3Dial(t, addr)
	c.fail("NOOP "+strings.Repeat("x", 2000), "") // too long: -ERR, then the session goes on
	c.ok("CAPA")
	c.readMulti()
	c.fail("FOO", "")
	c.fail("APOP alice 0123456789abcdef0123456789abcdef", "")
	if r := c.cmd("RETR 1"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("RETR before login: %q", r)
	}
	if rest := c.expectClosed(); !strings.HasPrefix(rest, "-ERR ") {
		t.Errorf("after too many bad commands: %q", rest)
	}

	// An endless line is not read forever.
	c = pop3Dial(t, addr)
	go func() { _, _ = c.conn.Write([]byte(strings.Repeat("y", 1<<20))) }()
	c.expectClosed()

	// 255 octets (RFC 2449 §4) always fit.
	c = pop3Dial(t, addr)
	c.ok("USER " + strings.Repeat("u", 255-len("USER \r\n")))
}

func TestPOP3Pipelining(t *testing.T) {
	f, addr := pop3FakeServer(t, pop3TestConfig())
	f.add(pop3User, "a\r\n")
	f.add(pop3User, "b\r\n")
	c := pop3Dial(t, addr)
	if _, err := c.conn.Write([]byte("USER " + pop3User + "\r\nPASS secret\r\nRETR 1\r\nRETR 2\r\nDELE 1\r\nQUIT\r\n")); err != nil {
		t.Fatal(err)
	}
	want := "+OK send PASS\r\n+OK maildrop has 2 messages (6 octets)\r\n+OK 3 octets\r\na\r\n.\r\n+OK 3 octets\r\nb\r\n.\r\n+OK message 1 deleted\r\n+OK pop.test POP3 server signing off (1 message left)\r\n"
	if got := c.expectClosed(); got != want {
		t.Errorf("pipelined session:\n got %q\nwant %q", got, want)
	}
}

func TestPOP3PerIPLimit(t *testing.T) {
	cfg := pop3TestConfig()
	cfg.MaxConnsPerIP = 2
	_, addr := pop3FakeServer(t, cfg)
	pop3Dial(t, addr)
	pop3Dial(t, addr)
	c := pop3DialRaw(t, addr)
	if got := c.readLine(); !strings.HasPrefix(got, "-ERR [SYS/TEMP]") {
		t.Errorf("third connection got %q", got)
	}
}

// Over MaxConns the refusal says the server, not the address, is busy,
// and comes at once.
func TestPOP3ServerConnectionLimit(t *testing.T) {
	cfg := pop3TestConfig()
	cfg.MaxConns = 1
	_, addr := pop3FakeServer(t, cfg)
	pop3Dial(t, addr)
	c := pop3DialRaw(t, addr)
	start := time.Now()
	if got := c.readLine(); got != "-ERR [SYS/TEMP] too many connections, try again later" {
		t.Errorf("second connection got %q", got)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("refused after %v, not at once", d)
	}
}

// Close ends sessions, commits nothing and releases their locks.
func TestPOP3CloseReleasesLock(t *testing.T) {
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	f.add(pop3User, "x\r\n")
	srv, addr := pop3Serve(t, f, pop3TestAuth(f, true), pop3TestConfig(), false)
	c := pop3Dial(t, addr)
	c.login(pop3User, "secret")
	c.ok("DELE 1")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if h := f.holder(pop3User); h != "" {
		t.Errorf("lock held by %q after Close", h)
	}
	if len(f.uids(pop3User)) != 1 {
		t.Error("Close committed a deletion")
	}
	c.expectClosed()
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after Close")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, frontend.ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}
