package frontend_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/node"
	"powermail/node/nodetest"
)

// The IMAP suite (imap_cmd_test.go) runs against two backends with one
// IMAP server per node:
//
//   - TestIMAPCluster: three real nodes from nodetest (raft, Pebble,
//     body replication). This is the one that proves the promises: a
//     delivery through node 0 is read through node 2, a STORE on node 1
//     shows on node 0, IDLE on node 2 hears of a delivery on node 0.
//   - TestIMAPFake: three servers over one in-memory MailStore, so the
//     protocol logic is also checked in milliseconds.
//
// Each subtest works in a fresh mailbox, so one cluster serves them all.

const imapPassword = "pw"

type imapBackend interface {
	// server returns the IMAP address of node i.
	server(i int) string
	// newUser creates a fresh mailbox with password imapPassword.
	newUser(t *testing.T) string
	// deliver delivers raw to the INBOX of each address through node i.
	deliver(t *testing.T, i int, raw string, to ...string)
}

var imapUserSeq atomic.Int64

func imapNewAddr(t *testing.T) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", " ", "-", "_", "-").Replace(t.Name()))
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("u%d-%s@example.com", imapUserSeq.Add(1), strings.Trim(name, "-"))
}

func imapTestLogger() *slog.Logger {
	out := io.Discard
	if testing.Verbose() && os.Getenv("IMAP_LOG") != "" {
		out = os.Stderr
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startIMAP serves store on a loopback port until the test ends.
// soloIMAP starts a one-node cluster with mailbox user (imapPassword)
// and an IMAP server on it (one-second polls, plaintext login allowed).
func soloIMAP(t *testing.T, user string) (*nodetest.Cluster, string) {
	t.Helper()
	c := nodetest.Start(t, 1)
	c.AddMailboxes(imapPassword, user)
	return c, startIMAP(t, c.Nodes[0], frontend.IMAPConfig{PollInterval: time.Second}, true)
}

func startIMAP(t testing.TB, store frontend.MailStore, cfg frontend.IMAPConfig, allowInsecure bool) string {
	t.Helper()
	return serveLoopback(t, newIMAPTestServer(store, cfg, allowInsecure))
}

// loopbackServer is a protocol server serveLoopback can run.
type loopbackServer interface {
	Serve(net.Listener) error
	Close() error
}

// serveLoopback runs srv on a loopback port until the test ends, and
// checks then that Serve ended as a closed server's does.
func serveLoopback(t testing.TB, srv loopbackServer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, frontend.ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// newIMAPTestServer is an IMAP server over store with the test logger
// and a short failure delay.
func newIMAPTestServer(store frontend.MailStore, cfg frontend.IMAPConfig, allowInsecure bool) *frontend.IMAPServer {
	log := imapTestLogger()
	auth := frontend.NewAuthenticator(store, frontend.AuthConfig{AllowInsecure: allowInsecure, FailureDelay: time.Millisecond}, log)
	return frontend.NewIMAPServer(store, auth, cfg, log)
}

// listenIMAP serves srv on a loopback port (implicit TLS when tls is
// set) and returns its address; closing srv is the caller's.
func listenIMAP(t *testing.T, srv *frontend.IMAPServer, tls bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve := srv.Serve
	if tls {
		serve = srv.ServeTLS
	}
	go serve(ln)
	return ln.Addr().String()
}

// imapClusterBackend is three nodes from nodetest with an IMAP server each.
type imapClusterBackend struct {
	c     *nodetest.Cluster
	addrs []string
}

func newIMAPClusterBackend(t *testing.T) *imapClusterBackend {
	c := nodetest.Start(t, 3)
	b := &imapClusterBackend{c: c}
	for _, n := range c.Nodes {
		b.addrs = append(b.addrs, startIMAP(t, n, frontend.IMAPConfig{PollInterval: time.Second}, true))
	}
	return b
}

func (b *imapClusterBackend) server(i int) string { return b.addrs[i] }

func (b *imapClusterBackend) newUser(t *testing.T) string {
	a := imapNewAddr(t)
	b.c.AddMailboxes(imapPassword, a)
	return a
}

func (b *imapClusterBackend) deliver(t *testing.T, i int, raw string, to ...string) {
	t.Helper()
	b.c.Deliver(i, raw, to...)
}

// imapFakeBackend is three IMAP servers over one in-memory store.
type imapFakeBackend struct {
	store *frontend.IMAPMemStore
	addrs []string
}

func newIMAPFakeBackend(t *testing.T) *imapFakeBackend {
	b := &imapFakeBackend{store: frontend.NewIMAPMemStore()}
	for range 3 {
		b.addrs = append(b.addrs, startIMAP(t, b.store, frontend.IMAPConfig{PollInterval: time.Second}, true))
	}
	return b
}

func (b *imapFakeBackend) server(i int) string { return b.addrs[i] }

func (b *imapFakeBackend) newUser(t *testing.T) string {
	a := imapNewAddr(t)
	b.store.AddMailbox(a, imapPassword)
	return a
}

func (b *imapFakeBackend) deliver(t *testing.T, _ int, raw string, to ...string) {
	t.Helper()
	if err := b.store.Deliver(raw, to...); err != nil {
		t.Fatal(err)
	}
}

// TestIMAPCluster runs the IMAP suite against a three-node cluster.
func TestIMAPCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	runIMAPSuite(t, newIMAPClusterBackend(t))
}

// TestIMAPFake runs the IMAP suite against the in-memory store.
func TestIMAPFake(t *testing.T) {
	runIMAPSuite(t, newIMAPFakeBackend(t))
}

// imapEvents collects unilateral data: EXISTS, EXPUNGE, FETCH FLAGS.
type imapEvents struct {
	exists  chan uint32
	expunge chan uint32
	fetch   chan imapFlagEvent
}

type imapFlagEvent struct {
	seq   uint32
	uid   imap.UID
	flags []imap.Flag
}

func newIMAPEvents() *imapEvents {
	return &imapEvents{exists: make(chan uint32, 1000), expunge: make(chan uint32, 1000), fetch: make(chan imapFlagEvent, 1000)}
}

func (ev *imapEvents) handler() *imapclient.UnilateralDataHandler {
	return &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { ev.expunge <- seq },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				ev.exists <- *d.NumMessages
			}
		},
		Fetch: func(msg *imapclient.FetchMessageData) {
			buf, err := msg.Collect()
			if err == nil && buf.Flags != nil {
				ev.fetch <- imapFlagEvent{seq: buf.SeqNum, uid: buf.UID, flags: buf.Flags}
			}
		},
	}
}

// drain empties the channels (events from before the step under test).
func (ev *imapEvents) drain() {
	for {
		select {
		case <-ev.exists:
		case <-ev.expunge:
		case <-ev.fetch:
		default:
			return
		}
	}
}

// imapConn is a logged-in client with its unilateral events.
type imapConn struct {
	*imapclient.Client
	ev *imapEvents
}

// dialIMAP connects to node i (no TLS; the servers allow it) and logs in.
func dialIMAP(t *testing.T, b imapBackend, i int, user string) *imapConn {
	t.Helper()
	c := dialIMAPAnon(t, b.server(i))
	if err := c.Login(user, imapPassword).Wait(); err != nil {
		t.Fatalf("login %s on node %d: %v", user, i, err)
	}
	return c
}

func dialIMAPAnon(t *testing.T, addr string) *imapConn {
	t.Helper()
	ev := newIMAPEvents()
	c, err := imapclient.DialInsecure(addr, &imapclient.Options{UnilateralDataHandler: ev.handler()})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { c.Close() }) })
	return &imapConn{Client: c, ev: ev}
}

// imapCode returns the response code of an IMAP error ("" if none).
func imapCode(err error) imap.ResponseCode {
	var ie *imap.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func wantIMAPCode(t *testing.T, what string, err error, code imap.ResponseCode) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want NO [%s]", what, code)
	}
	if got := imapCode(err); got != code {
		t.Fatalf("%s: %v (code %q), want [%s]", what, err, got, code)
	}
}

func imapTestMsg(subject, body string) string {
	return "From: Sender <sender@example.org>\r\n" +
		"To: Alice <alice@example.com>\r\n" +
		"Subject: " + subject + "\r\n" +
		"Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n" +
		"Message-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.org>\r\n" +
		"\r\n" + body + "\r\n"
}

// imapMultipart has a text part and a base64 binary part (00 01 02 ff).
const imapMultipart = "From: Multi <multi@example.org>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: multipart\r\n" +
	"Date: Tue, 03 Jan 2006 10:00:00 +0000\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n" +
	"\r\n" +
	"--XYZ\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"\r\n" +
	"Hello from the plain part\r\n" +
	"--XYZ\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAEC/w==\r\n" +
	"--XYZ--\r\n"

// eventually polls cond every 20 ms until it holds or d passes.
func imapEventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// imapRaw speaks the protocol line by line, for what imapclient cannot
// send (SEARCH RETURN (SAVE), "$", malformed commands).
type imapRaw struct {
	t   *testing.T
	c   net.Conn
	r   *bufio.Reader
	tag int
	// wait bounds the wait for each line; 0 is 10 s.
	wait time.Duration
}

func dialIMAPRaw(t *testing.T, addr, user string) *imapRaw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := &imapRaw{t: t, c: c, r: bufio.NewReader(c)}
	if greet := r.line(); !strings.HasPrefix(greet, "* OK") {
		t.Fatalf("greeting %q", greet)
	}
	if user != "" {
		r.ok(fmt.Sprintf("LOGIN %q %q", user, imapPassword))
	}
	return r
}

func (r *imapRaw) line() string {
	r.t.Helper()
	wait := r.wait
	if wait == 0 {
		wait = 10 * time.Second
	}
	r.c.SetReadDeadline(time.Now().Add(wait))
	l, err := r.r.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// cmd sends a command and returns the untagged lines and the tagged one.
func (r *imapRaw) cmd(command string) (untagged []string, tagged string) {
	r.t.Helper()
	r.tag++
	tag := fmt.Sprintf("r%d", r.tag)
	if _, err := fmt.Fprintf(r.c, "%s %s\r\n", tag, command); err != nil {
		r.t.Fatal(err)
	}
	for {
		l := r.line()
		if strings.HasPrefix(l, tag+" ") {
			return untagged, strings.TrimPrefix(l, tag+" ")
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed.
func (r *imapRaw) ok(command string) []string {
	r.t.Helper()
	u, tagged := r.cmd(command)
	if !strings.HasPrefix(tagged, "OK") {
		r.t.Fatalf("%s: %s", command, tagged)
	}
	return u
}

// want runs a command that must succeed with an untagged line that
// starts with prefix and contains every one of parts.
func (r *imapRaw) want(command, prefix string, parts ...string) {
	r.t.Helper()
	u := r.ok(command)
	if prefix == "" {
		return
	}
	for _, l := range u {
		if !strings.HasPrefix(l, prefix) {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return
		}
	}
	r.t.Errorf("%s: no line %q...%q in %q", command, prefix, parts, u)
}

// A session whose selected folder is replaced by another folder under
// the same name (created in the same entry, so with the same
// UIDVALIDITY) is ended, not left serving the old folder's messages
// under the new one's UIDs; and deleting one's own selected folder gets
// its tagged OK.
func TestIMAPSelectedFolderReplacedOrDeleted(t *testing.T) {
	b := newIMAPClusterBackend(t)
	user := b.newUser(t)
	a, other := dialIMAP(t, b, 0, user), dialIMAP(t, b, 0, user)
	if _, err := a.Select("Trash", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete("Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Rename("Junk", "Trash", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	a.Noop().Wait()
	select {
	case <-a.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("a session whose folder was replaced goes on")
	}
	if err := other.Create("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Select("Work", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := other.Delete("Work").Wait(); err != nil {
		t.Fatalf("DELETE of the selected folder: %v", err)
	}
}

// STORE .SILENT tells the client nothing, but a change another session
// made to the same message meanwhile is still reported by the next poll
// (RFC 9051 section 6.4.6).
func TestIMAPSilentStoreKeepsOthersChanges(t *testing.T) {
	b := newIMAPClusterBackend(t)
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("one", "first"), user)
	a, other := dialIMAP(t, b, 0, user), dialIMAP(t, b, 0, user)
	for _, c := range []*imapConn{a, other} {
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	store := func(c *imapConn, f imap.Flag) []*imapclient.FetchMessageBuffer {
		t.Helper()
		msgs, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{f}}, nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		return msgs
	}
	store(other, imap.FlagFlagged)
	a.ev.drain()
	// The client may take a FETCH sent during its STORE for the STORE's.
	for _, m := range store(a, imap.FlagSeen) {
		if slices.Contains(m.Flags, imap.FlagFlagged) {
			return
		}
	}
	deadline := time.After(5 * time.Second)
	for {
		if err := a.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-a.ev.fetch:
			if slices.Contains(ev.flags, imap.FlagFlagged) && slices.Contains(ev.flags, imap.FlagSeen) {
				return
			}
		case <-deadline:
			t.Fatal("the other session's \\Flagged was never reported")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// -FLAGS removes a keyword in every spelling the message holds: the
// store tells "Work" from "work", this server does not.
func TestIMAPRemovesEverySpellingOfAKeyword(t *testing.T) {
	b := newIMAPClusterBackend(t)
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("one", "first"), user)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, k := range []string{"Work", "work"} { // as two sessions that had not seen each other's
		if _, err := b.c.Nodes[0].StoreFlags(ctx, user, "INBOX", []uint32{1}, node.FlagsAdd, []string{k}); err != nil {
			t.Fatal(err)
		}
	}
	c := dialIMAP(t, b, 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{"WORK"}}, nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || slices.ContainsFunc(msgs[0].Flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), "work") }) {
		t.Fatalf("after -FLAGS (WORK): %+v", msgs)
	}
}
