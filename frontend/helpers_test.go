package frontend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/node"
)

// fakeDeliverer is a recording Deliverer over a small directory. Domains
// example.com and example.org are local; every other domain is not.
type fakeDeliverer struct {
	mu         sync.Mutex
	directory  map[string][]string // address -> canonical mailboxes
	resolveErr map[string]error    // address -> Resolve error
	rejected   map[string]error    // mailbox -> rejection in Deliver
	deliverErr error               // returned by Deliver after reading the body

	// deliverHook, when set, replaces the default body handling.
	deliverHook func(ctx context.Context, msg node.Message, body io.Reader) (node.DeliveryResult, error)
	// resolveHook, when set, runs before the directory lookup.
	resolveHook func(ctx context.Context, rcpt string) error
	// spaceHook, when set, answers CheckSpace.
	spaceHook func(size int64) error
	// sendAs maps an alias (lower case) to the mailbox that may send as
	// it; empty by default.
	sendAs map[string]string

	resolves   []resolveCall
	deliveries []delivery
}

func (f *fakeDeliverer) CheckSpace(size int64) error {
	f.mu.Lock()
	hook := f.spaceHook
	f.mu.Unlock()
	if hook == nil {
		return nil
	}
	return hook(size)
}

type resolveCall struct {
	rcpt        string
	hasDeadline bool
}

type delivery struct {
	msg         node.Message
	body        []byte
	readErr     error
	hasDeadline bool
}

func newFakeDeliverer() *fakeDeliverer {
	return &fakeDeliverer{
		directory: map[string][]string{
			"alice@example.com": {"alice@example.com"},
			"al@example.com":    {"alice@example.com"},
			"a.l@example.org":   {"alice@example.com"},
			"bob@example.com":   {"bob@example.com"},
			"carol@example.com": {"carol@example.com"},
			"team@example.com":  {"alice@example.com", "bob@example.com"},
			"empty@example.com": {},
			"out@example.com":   {},
			"fwd@example.com":   {"carol@example.com"},
		},
		resolveErr: map[string]error{
			"full@example.com": fmt.Errorf("mailbox full@example.com: %w", node.ErrOverQuota),
			"ext@example.com":  fmt.Errorf("forward to x@elsewhere.net: %w", node.ErrExternalTarget),
			"down@example.com": fmt.Errorf("no leader: %w", node.ErrUnavailable),
			"bug@example.com":  errors.New("something unexpected"),
		},
		rejected: map[string]error{},
	}
}

func (f *fakeDeliverer) Resolve(ctx context.Context, rcpt string) (node.Resolution, error) {
	boxes, err := f.resolveBoxes(ctx, rcpt)
	if ext, ok := fakeExternal[strings.ToLower(rcpt)]; ok && err == nil {
		return node.Resolution{Mailboxes: boxes, External: ext}, nil
	}
	return node.Resolution{Mailboxes: boxes}, err
}

// fakeExternal are the fake directory's forwards to other providers
// (queued by Deliver); fwd@ keeps a local copy too.
var fakeExternal = map[string][]string{
	"out@example.com": {"x@elsewhere.net"},
	"fwd@example.com": {"y@elsewhere.net"},
}

func (f *fakeDeliverer) resolveBoxes(ctx context.Context, rcpt string) ([]string, error) {
	_, hasDeadline := ctx.Deadline()
	f.mu.Lock()
	f.resolves = append(f.resolves, resolveCall{rcpt: rcpt, hasDeadline: hasDeadline})
	hook := f.resolveHook
	f.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, rcpt); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := strings.ToLower(rcpt)
	if err, ok := f.resolveErr[key]; ok {
		return nil, err
	}
	if boxes, ok := f.directory[key]; ok {
		return boxes, nil
	}
	domain := key[strings.LastIndexByte(key, '@')+1:]
	if domain == "example.com" || domain == "example.org" {
		return nil, fmt.Errorf("%s: %w", rcpt, node.ErrUnknownRecipient)
	}
	return nil, fmt.Errorf("%s: %w", domain, node.ErrNotLocal)
}

func (f *fakeDeliverer) Deliver(ctx context.Context, msg node.Message, body io.Reader) (node.DeliveryResult, error) {
	f.mu.Lock()
	hook := f.deliverHook
	f.mu.Unlock()
	if hook != nil {
		return hook(ctx, msg, body)
	}
	data, err := io.ReadAll(body)
	_, hasDeadline := ctx.Deadline()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliveries = append(f.deliveries, delivery{msg: msg, body: data, readErr: err, hasDeadline: hasDeadline})
	if err != nil {
		return node.DeliveryResult{}, fmt.Errorf("reading body: %w", err)
	}
	if f.deliverErr != nil {
		return node.DeliveryResult{}, f.deliverErr
	}
	res := node.DeliveryResult{Rejected: map[string]error{}}
	if len(msg.External) > 0 {
		res.Queued = "q1"
	}
	for _, b := range msg.Mailboxes {
		if rerr, ok := f.rejected[b]; ok {
			res.Rejected[b] = rerr
		}
	}
	return res, nil
}

func (f *fakeDeliverer) SendAsAlias(_ context.Context, mailbox, addr string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	owner, ok := f.sendAs[strings.ToLower(addr)]
	return ok && strings.EqualFold(owner, mailbox), nil
}

func (f *fakeDeliverer) set(fn func(f *fakeDeliverer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeDeliverer) allDeliveries() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]delivery(nil), f.deliveries...)
}

func (f *fakeDeliverer) lastDelivery(t testing.TB) delivery {
	t.Helper()
	ds := f.allDeliveries()
	if len(ds) == 0 {
		t.Fatal("no Deliver call recorded")
	}
	return ds[len(ds)-1]
}

// testConfig is a valid configuration with short timeouts.
func testConfig() SMTPConfig {
	return SMTPConfig{
		Hostname:       "mx.test",
		ReadTimeout:    5 * time.Second,
		WriteTimeout:   5 * time.Second,
		ResolveTimeout: 2 * time.Second,
		DeliverTimeout: 5 * time.Second,
		// Refused RCPTs past the first few are slowed; a test that is
		// refused many is not.
		RejectedRcptDelay: time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
	}
}

// startServer serves cfg on a fresh loopback port and closes it when the
// test ends, checking that Serve returns ErrServerClosed.
func startServer(t testing.TB, cfg SMTPConfig, d Deliverer) (*SMTPServer, string) {
	t.Helper()
	srv, err := NewSMTPServer(cfg, d)
	if err != nil {
		t.Fatalf("NewSMTPServer: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve returned %v, want ErrServerClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return srv, ln.Addr().String()
}

// resp is one (possibly multi-line) server reply.
type resp struct {
	code int
	msg  string // text after the code; starts with the enhanced code
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.code, r.msg) }

// tclient speaks raw SMTP lines over TCP, so tests control every byte.
type tclient struct {
	t    testing.TB
	conn net.Conn
	tp   *textproto.Conn
}

// upgradeTLS runs the client side of a TLS handshake on c's connection
// (after a 220 to STARTTLS, or on an implicit-TLS listener) and goes on
// over it.
func (c *tclient) upgradeTLS(roots *x509.CertPool) {
	c.t.Helper()
	tc := tls.Client(c.conn, &tls.Config{ServerName: "mx.test", RootCAs: roots})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn, c.tp = tc, textproto.NewConn(tc)
}

// dial connects and reads the greeting, which must be 220.
func dial(t testing.TB, addr string) *tclient {
	t.Helper()
	c := dialRaw(t, addr)
	if r := c.read(); r.code != 220 {
		t.Fatalf("greeting: %v", r)
	}
	return c
}

func dialRaw(t testing.TB, addr string) *tclient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &tclient{t: t, conn: conn, tp: textproto.NewConn(conn)}
}

// write sends raw bytes.
func (c *tclient) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *tclient) read() resp {
	c.t.Helper()
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil {
		c.t.Fatalf("reading reply: %v", err)
	}
	return resp{code: code, msg: msg}
}

// cmd sends one command line and returns its reply.
func (c *tclient) cmd(line string) resp {
	c.t.Helper()
	c.write(line + "\r\n")
	return c.read()
}

// expect sends line and fails unless the reply has code and, if enh is
// not empty, that enhanced status code.
func (c *tclient) expect(line string, code int, enh string) resp {
	c.t.Helper()
	r := c.cmd(line)
	checkReply(c.t, line, r, code, enh)
	return r
}

func checkReply(t testing.TB, what string, r resp, code int, enh string) {
	t.Helper()
	if r.code != code || (enh != "" && !strings.HasPrefix(r.msg, enh+" ")) {
		t.Fatalf("%q: got %v, want %d %s", what, r, code, enh)
	}
}

func (c *tclient) ehlo() resp {
	c.t.Helper()
	return c.expect("EHLO client.test", 250, "")
}

// data sends DATA and the already dot-stuffed, CRLF-terminated content,
// then the final dot, and returns the reply after the dot.
func (c *tclient) data(stuffed string) resp {
	c.t.Helper()
	c.expect("DATA", 354, "")
	c.write(stuffed + ".\r\n")
	return c.read()
}

// transaction runs MAIL, RCPTs (which must be accepted) and DATA.
func (c *tclient) transaction(from string, rcpts []string, stuffed string) resp {
	c.t.Helper()
	c.expect("MAIL FROM:<"+from+">", 250, "2.0.0")
	for _, r := range rcpts {
		c.expect("RCPT TO:<"+r+">", 250, "2.0.0")
	}
	return c.data(stuffed)
}

// expectCodes reads one reply for each code in want (to pipelined
// commands) and fails unless their codes are want, in order.
func (c *tclient) expectCodes(want ...int) {
	c.t.Helper()
	var codes []int
	for range want {
		codes = append(codes, c.read().code)
	}
	if !slices.Equal(codes, want) {
		c.t.Fatalf("codes %v, want %v", codes, want)
	}
}

// expectClosed reads until EOF and fails if the server keeps the
// connection open. It returns the lines read.
func (c *tclient) expectClosed() []string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.tp.ReadLine()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("connection still open; read %q", lines)
			}
			return lines
		}
		lines = append(lines, line)
	}
}

// splitTrace splits a delivered body into the prepended trace header
// fields and the client's content.
func splitTrace(t testing.TB, body []byte) (trace, content string) {
	t.Helper()
	s := string(body)
	if !strings.HasPrefix(s, "Return-Path: <") {
		t.Fatalf("body does not start with Return-Path: %q", s[:min(len(s), 80)])
	}
	// The Received field is the second; it ends at the first line that is
	// not a continuation.
	i := strings.Index(s, "\r\nReceived: ")
	if i < 0 {
		t.Fatalf("no Received field: %q", s)
	}
	j := i + 2
	for {
		k := strings.Index(s[j:], "\r\n")
		if k < 0 {
			t.Fatalf("unterminated trace header: %q", s)
		}
		j += k + 2
		if j >= len(s) || (s[j] != '\t' && s[j] != ' ') {
			return s[:j], s[j:]
		}
	}
}

// begin opens a transaction from s@remote.test to rcpts, each accepted.
func (c *tclient) begin(rcpts ...string) {
	c.t.Helper()
	c.expect("MAIL FROM:<s@remote.test>", 250, "")
	for _, r := range rcpts {
		c.expect("RCPT TO:<"+r+">", 250, "")
	}
}
