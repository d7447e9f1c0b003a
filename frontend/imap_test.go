package frontend_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/prometheus/client_golang/prometheus"

	"powermail/frontend"
	"powermail/frontend/internal/testtls"
	"powermail/node"
)

// Tests of the server itself (TLS, limits, timeouts, failures) against
// the in-memory store; the per-command suite is in imap_cmd_test.go.

func imapMemStore(t *testing.T) (*frontend.IMAPMemStore, string) {
	store := frontend.NewIMAPMemStore()
	user := imapNewAddr(t)
	store.AddMailbox(user, imapPassword)
	return store, user
}

// TestIMAPTLS: without TLS no password is accepted (LOGINDISABLED, NO
// [PRIVACYREQUIRED]); after STARTTLS, or with implicit TLS, it is.
func TestIMAPTLS(t *testing.T) {
	store, user := imapMemStore(t)
	tlsCfg, roots := testtls.Config(t)
	log := imapTestLogger()
	auth := frontend.NewAuthenticator(store, frontend.AuthConfig{}, log) // AllowInsecure false
	srv := frontend.NewIMAPServer(store, auth, frontend.IMAPConfig{TLS: tlsCfg}, log)
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	implicit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(plain)
	go srv.ServeTLS(implicit)
	t.Cleanup(func() { srv.Close() })
	clientTLS := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}

	c := dialIMAPAnon(t, plain.Addr().String())
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has(imap.CapLoginDisabled) || !caps.Has(imap.CapStartTLS) || caps.Has("AUTH=PLAIN") {
		t.Errorf("plaintext CAPABILITY %v: want LOGINDISABLED and STARTTLS, no AUTH=PLAIN", caps)
	}
	wantIMAPCode(t, "plaintext LOGIN", c.Login(user, imapPassword).Wait(), imap.ResponseCodePrivacyRequired)

	st, err := imapclient.DialStartTLS(plain.Addr().String(), &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer st.Close()
	if err := st.Login(user, imapPassword).Wait(); err != nil {
		t.Fatalf("LOGIN after STARTTLS: %v", err)
	}
	if _, err := st.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	it, err := imapclient.DialTLS(implicit.Addr().String(), &imapclient.Options{TLSConfig: clientTLS})
	if err != nil {
		t.Fatalf("implicit TLS: %v", err)
	}
	defer it.Close()
	caps, err = it.Capability().Wait()
	if err != nil || caps.Has(imap.CapStartTLS) || caps.Has(imap.CapLoginDisabled) {
		t.Errorf("implicit TLS CAPABILITY %v (%v): want neither STARTTLS nor LOGINDISABLED", caps, err)
	}
	if err := it.Login(user, imapPassword).Wait(); err != nil {
		t.Fatalf("LOGIN over implicit TLS: %v", err)
	}
}

// TestIMAPPerIPLimit: connections over MaxConnsPerIP get BYE as their
// greeting, and a slot frees when a connection ends.
func TestIMAPPerIPLimit(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{MaxConnsPerIP: 2}, true)
	a := dialIMAP(t, imapSingle(addr), 0, user)
	dialIMAP(t, imapSingle(addr), 0, user)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); !strings.HasPrefix(got, "* BYE") {
		t.Fatalf("third connection greeted %q, want * BYE", got)
	}

	a.Logout().Wait()
	a.Close()
	imapEventually(t, 5*time.Second, "a slot to free up", func() bool {
		c, err := imapclient.DialInsecure(addr, nil)
		if err != nil {
			return false
		}
		defer c.Close()
		return c.Noop().Wait() == nil
	})
}

// TestIMAPServerConnectionLimit: over MaxConns (all clients together) a
// connection gets BYE at once, without the per-IP limit's grace.
func TestIMAPServerConnectionLimit(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{MaxConnsPerIP: 10, MaxConns: 1}, true)
	dialIMAP(t, imapSingle(addr), 0, user)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	buf := make([]byte, 200)
	n, _ := c.Read(buf)
	if got := string(buf[:n]); got != "* BYE [UNAVAILABLE] Too many connections, try again later\r\n" {
		t.Fatalf("second connection greeted %q", got)
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("refused after %v, not at once", d)
	}
}

// TestIMAPStartTLSKeepsItsSlot: STARTTLS hands the connection to the TLS
// session with its slot, so a server at MaxConns does not refuse the
// client it already serves, and the slot is free again after LOGOUT.
func TestIMAPStartTLSKeepsItsSlot(t *testing.T) {
	store, user := imapMemStore(t)
	tlsCfg, roots := testtls.Config(t)
	log := imapTestLogger()
	auth := frontend.NewAuthenticator(store, frontend.AuthConfig{}, log)
	srv := frontend.NewIMAPServer(store, auth, frontend.IMAPConfig{TLS: tlsCfg, MaxConns: 1}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	clientTLS := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	for i := range 3 { // each round needs the slot the previous one freed
		var st *imapclient.Client
		imapEventually(t, 5*time.Second, "a free slot", func() bool {
			st, err = imapclient.DialStartTLS(ln.Addr().String(), &imapclient.Options{TLSConfig: clientTLS})
			return err == nil
		})
		if err := st.Login(user, imapPassword).Wait(); err != nil {
			t.Fatalf("round %d: LOGIN after STARTTLS at the connection limit: %v", i, err)
		}
		st.Logout().Wait()
		st.Close()
	}
}

// imapSingle is a backend of one server, for dialIMAP.
type imapSingle string

func (s imapSingle) server(int) string                          { return string(s) }
func (s imapSingle) newUser(*testing.T) string                  { panic("imapSingle has no users") }
func (s imapSingle) deliver(*testing.T, int, string, ...string) { panic("imapSingle cannot deliver") }

// TestIMAPPreAuthTimeout: a client that never logs in is disconnected
// after PreAuthTimeout; one that logged in is not (its timer is the
// 30-minute IdleTimeout).
func TestIMAPPreAuthTimeout(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{PreAuthTimeout: 300 * time.Millisecond}, true)
	anon := dialIMAPAnon(t, addr)
	authed := dialIMAP(t, imapSingle(addr), 0, user)
	select {
	case <-anon.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("a silent unauthenticated client was not disconnected")
	}
	time.Sleep(500 * time.Millisecond)
	if err := authed.Noop().Wait(); err != nil {
		t.Fatalf("an authenticated client silent for 0.8 s was disconnected: %v", err)
	}
}

// A client that keeps busy without logging in is disconnected all the
// same once PreAuthTimeout has passed since it connected.
func TestIMAPPreAuthTimeoutIsATotal(t *testing.T) {
	store, _ := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{PreAuthTimeout: 400 * time.Millisecond}, true)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn)
		close(closed)
	}()
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case <-closed:
			if took := time.Since(start); took < 300*time.Millisecond {
				t.Fatalf("closed after %v, before the limit", took)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("a client sending NOOPs without logging in was not disconnected")
		}
		fmt.Fprintf(conn, "a%d NOOP\r\n", i)
	}
}

func TestIMAPConfigDefaults(t *testing.T) {
	if err := (frontend.IMAPConfig{}).Validate(); err != nil {
		t.Errorf("zero config: %v", err)
	}
	bad := frontend.IMAPConfig{IdleTimeout: time.Minute, MaxAppendBytes: 1 << 40, MaxConnsPerIP: -1, PollInterval: -time.Second,
		AccountCheckInterval: -time.Second}
	err := bad.Validate()
	for _, want := range []string{"IdleTimeout", "MaxAppendBytes", "MaxConnsPerIP", "PollInterval", "AccountCheckInterval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%+v) = %v, want it to name %s", bad, err, want)
		}
	}
}

// TestIMAPBackendFailures: every store failure becomes a tagged NO with
// the right code, and the connection stays usable.
func TestIMAPBackendFailures(t *testing.T) {
	store, user := imapMemStore(t)
	for i := range 3 {
		if err := store.Deliver(imapTestMsg(fmt.Sprintf("f%d", i), "x"), user); err != nil {
			t.Fatal(err)
		}
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	c := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	failing := func(op string, err error) {
		store.Fail = func(o string) error {
			if o == op {
				return err
			}
			return nil
		}
	}
	defer func() { store.Fail = nil }()

	failing("Folders", fmt.Errorf("%w: no leader", node.ErrUnavailable))
	_, err := c.List("", "*", nil).Collect()
	wantIMAPCode(t, "LIST, cluster unavailable", err, imap.ResponseCodeUnavailable)

	failing("Append", fmt.Errorf("%w: 10 of 10 bytes", node.ErrOverQuota))
	cmd := c.Append("INBOX", 3, nil)
	cmd.Write([]byte("x\r\n"))
	cmd.Close()
	_, err = cmd.Wait()
	wantIMAPCode(t, "APPEND over quota", err, imap.ResponseCodeOverQuota)

	failing("Append", fmt.Errorf("%w: UIDNEXT 4294967295", node.ErrFolderFull))
	cmd = c.Append("INBOX", 3, nil)
	cmd.Write([]byte("x\r\n"))
	cmd.Close()
	_, err = cmd.Wait()
	wantIMAPCode(t, "APPEND to a folder out of UIDs", err, imap.ResponseCodeLimit)

	failing("StoreFlags", errors.New("disk on fire"))
	err = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	wantIMAPCode(t, "STORE, unexpected error", err, imap.ResponseCodeUnavailable)

	failing("CreateFolder", fmt.Errorf("%w: bad name", node.ErrInvalidArgument))
	wantIMAPCode(t, "CREATE refused", c.Create("x", nil).Wait(), imap.ResponseCodeCannot)

	failing("Expunge", context.DeadlineExceeded)
	_, err = c.Expunge().Collect()
	wantIMAPCode(t, "EXPUNGE timeout", err, imap.ResponseCodeUnavailable)

	// A body that cannot be opened: the other messages are answered.
	n := 0
	store.Fail = func(o string) error {
		if o == "OpenBody" {
			if n++; n == 2 {
				return fmt.Errorf("%w: no replica", node.ErrBodyUnavailable)
			}
		}
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{Envelope: true}).Collect()
	wantIMAPCode(t, "FETCH with one unreadable body", err, imap.ResponseCodeUnavailable)
	if len(msgs) != 2 {
		t.Errorf("FETCH with one unreadable body answered %d messages, want the other 2", len(msgs))
	}

	store.Fail = nil
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("connection unusable after failures: %v", err)
	}

	// A NOOP that cannot read the folder must not answer OK, even right
	// after a failed command (jepsen/RESULTS.md, bug 4): OK would vouch
	// for a snapshot it could not refresh.
	failing("StoreFlags", fmt.Errorf("%w: no leader", node.ErrUnavailable))
	err = c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
	wantIMAPCode(t, "STORE, no leader", err, imap.ResponseCodeUnavailable)
	failing("Folder", fmt.Errorf("%w: no leader", node.ErrUnavailable))
	if err := c.Noop().Wait(); err == nil {
		t.Errorf("NOOP after a failed STORE, with the store down: OK, want a failure")
	}
}

// TestIMAPNoopAfterSelectNeedsStore: SELECT is the one command imapserver
// does not poll after. A NOOP right after it is still a bare NOOP: with
// the store down it must fail, not answer OK from SELECT's snapshot.
func TestIMAPNoopAfterSelectNeedsStore(t *testing.T) {
	store, user := imapMemStore(t)
	if err := store.Deliver(imapTestMsg("s1", "x"), user); err != nil {
		t.Fatal(err)
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	c := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	store.Fail = func(o string) error {
		if o == "Folder" {
			return fmt.Errorf("%w: no leader", node.ErrUnavailable)
		}
		return nil
	}
	defer func() { store.Fail = nil }()
	if err := c.Noop().Wait(); err == nil {
		t.Errorf("NOOP right after SELECT, with the store down: OK, want a failure")
	}
}

// TestIMAPBodyFailsMidStream: when a body fails after its literal has
// been announced, the connection is closed (it cannot be completed) and
// nothing hangs.
func TestIMAPBodyFailsMidStream(t *testing.T) {
	store, user := imapMemStore(t)
	if err := store.Deliver(imapTestMsg("big", strings.Repeat("line of text\r\n", 1000)), user); err != nil {
		t.Fatal(err)
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	// Spoken raw: imapclient races with itself when a literal breaks off.
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	store.BodyErr, store.BodyErrAfter = errors.New("checksum mismatch"), 5000
	fmt.Fprintf(r.c, "f1 FETCH 1 BODY.PEEK[]\r\n")
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(r.r)
	if err != nil {
		t.Fatalf("connection not closed after a failed body stream: %v (read %d bytes)", err, len(got))
	}
	if !bytes.Contains(got, []byte("* 1 FETCH (BODY[] {")) || bytes.Contains(got, []byte("f1 OK")) || len(got) > 6000 {
		t.Fatalf("after a body failing at 5000 bytes the client read %d bytes ending %q; want a cut literal, no OK",
			len(got), got[max(0, len(got)-80):])
	}
	// BODY[TEXT] is parsed before the response starts: a clean NO.
	c2 := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := c2.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	_, err = c2.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierText, Peek: true}}}).Collect()
	if err == nil || imapCode(err) != imap.ResponseCodeUnavailable {
		t.Fatalf("FETCH BODY[TEXT] of a failing body: %v, want NO [UNAVAILABLE]", err)
	}
	if err := c2.Noop().Wait(); err != nil {
		t.Fatalf("connection unusable after a clean failure: %v", err)
	}
}

// TestIMAPBodyFailsAtItsEnd: a whole body is checked against its hash
// when its reader meets the end; a failure there, after every byte went
// out, still closes the connection without an OK, so the client keeps
// nothing (it retries, and gets a good copy).
func TestIMAPBodyFailsAtItsEnd(t *testing.T) {
	store, user := imapMemStore(t)
	raw := imapTestMsg("big", strings.Repeat("line of text\r\n", 1000))
	if err := store.Deliver(raw, user); err != nil {
		t.Fatal(err)
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	store.BodyErr, store.BodyErrAfter = errors.New("content hash mismatch"), int64(len(raw))
	fmt.Fprintf(r.c, "f1 FETCH 1 BODY.PEEK[]\r\n")
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(r.r)
	if err != nil {
		t.Fatalf("connection not closed after the body failed at its end: %v (read %d bytes)", err, len(got))
	}
	if bytes.Contains(got, []byte("f1 OK")) {
		t.Fatalf("a body failing its hash at the end was answered OK: ...%q", got[max(0, len(got)-80):])
	}
}

// imapNoWatch hides the store's change notifications.
type imapNoWatch struct{ *frontend.IMAPMemStore }

func (imapNoWatch) Watch(string) (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

// TestIMAPIdlePollsWithoutWatch: IDLE also polls every PollInterval, so
// a change is reported even if a notification is lost.
func TestIMAPIdlePollsWithoutWatch(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, imapNoWatch{store}, frontend.IMAPConfig{PollInterval: 200 * time.Millisecond}, true)
	c := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Deliver(imapTestMsg("late", "x"), user); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-c.ev.exists:
		if n != 1 {
			t.Errorf("EXISTS %d", n)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("IDLE without notifications did not poll")
	}
	idle.Close()
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestIMAPServerClose: Close ends every session and Serve returns
// ErrServerClosed (checked by startIMAP's cleanup); later Serve calls
// fail at once.
func TestIMAPServerClose(t *testing.T) {
	store, user := imapMemStore(t)
	log := imapTestLogger()
	srv := frontend.NewIMAPServer(store, frontend.NewAuthenticator(store, frontend.AuthConfig{AllowInsecure: true}, log), frontend.IMAPConfig{}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c := dialIMAP(t, imapSingle(ln.Addr().String()), 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	_ = idle
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, frontend.ErrServerClosed) {
		t.Errorf("Serve: %v, want ErrServerClosed", err)
	}
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("an idling session survived Close")
	}
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := srv.Serve(ln2); !errors.Is(err, frontend.ErrServerClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
}

// TestIMAPRawProtocol covers what imapclient will not send: ENABLE
// IMAP4rev2, unknown STATUS items, sequence sets out of range, UTF-8
// names, read-only MOVE.
func TestIMAPRawProtocol(t *testing.T) {
	store, user := imapMemStore(t)
	store.Deliver(imapTestMsg("r1", "x"), user)
	store.Deliver(imapTestMsg("r2", "x"), user)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, user)
	r.want("ENABLE IMAP4rev2", "* ENABLED IMAP4rev2")
	r.want(`CREATE "Café/Ünï"`, "")
	r.want(`LIST "" "Caf*"`, `* LIST (\HasNoChildren) "/" "Café/Ünï"`)
	r.want("STATUS INBOX (DELETED-STORAGE)", "* STATUS INBOX (DELETED-STORAGE 0)")
	r.want("STATUS INBOX (MESSAGES UNSEEN SIZE APPENDLIMIT)", "* STATUS INBOX (MESSAGES 2 UNSEEN 2 SIZE ", "APPENDLIMIT 52428800")
	r.want("EXAMINE INBOX", "* OK [PERMANENTFLAGS ()]")
	if _, tagged := r.cmd("MOVE 1 Trash"); !strings.HasPrefix(tagged, "NO") {
		t.Errorf("MOVE under EXAMINE: %s, want NO", tagged)
	}
	r.want("SELECT INBOX", "* 2 EXISTS")
	if _, tagged := r.cmd("FETCH 7 (FLAGS)"); !strings.HasPrefix(tagged, "BAD") {
		t.Errorf("FETCH 7 of 2: %s, want BAD", tagged)
	}
	r.want("FETCH 2:* (UID)", "* 2 FETCH (UID 2)")
	r.want("UID FETCH 1:4294967295 (UID)", "* 2 FETCH (UID 2)")
	r.want("SEARCH ALL", "* ESEARCH (TAG", "ALL 1:2") // IMAP4rev2 enabled: ESEARCH
	r.ok("NOOP")
	if _, tagged := r.cmd("LOGOUT"); !strings.HasPrefix(tagged, "OK") {
		t.Errorf("LOGOUT: %s", tagged)
	}
}

// TestIMAPDeepMIME: a message of deeply nested multiparts is described to
// a bounded depth (go-imap's own extractor recurses without limit, and a
// stack overflow would take the whole node down), and still searched
// and fetched.
func TestIMAPDeepMIME(t *testing.T) {
	store, user := imapMemStore(t)
	const levels = 2000
	var sb strings.Builder
	sb.WriteString("From: deep@example.org\r\nSubject: deep\r\n")
	for i := range levels {
		fmt.Fprintf(&sb, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	sb.WriteString("Content-Type: text/plain\r\n\r\nthe needle\r\n")
	for i := levels - 1; i >= 0; i-- {
		fmt.Fprintf(&sb, "--b%d--\r\n", i)
	}
	if err := store.Deliver(sb.String(), user); err != nil {
		t.Fatal(err)
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	c := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH BODYSTRUCTURE: %v", err)
	}
	depth := 0
	for bs := msgs[0].BodyStructure; bs != nil; depth++ {
		mp, ok := bs.(*imap.BodyStructureMultiPart)
		if !ok {
			break
		}
		bs = mp.Children[0]
	}
	if depth < 10 || depth > 40 {
		t.Errorf("BODYSTRUCTURE depth %d, want it cut off between 10 and 40", depth)
	}
	if _, err := c.Search(&imap.SearchCriteria{Body: []string{"needle"}}, nil).Wait(); err != nil {
		t.Errorf("SEARCH BODY: %v", err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
}

// slowFolders is a store whose folder listing takes a while and notes
// when it has returned.
type slowFolders struct {
	frontend.MailStore
	started chan struct{}
	done    atomic.Bool
}

func (s *slowFolders) Folders(ctx context.Context, addr string) ([]node.Folder, error) {
	close(s.started)
	time.Sleep(300 * time.Millisecond) // ignores ctx, as a slow store read would
	defer s.done.Store(true)
	return s.MailStore.Folders(ctx, addr)
}

// Close returns only after the sessions have ended, so that a node
// closed next is not read from by a command still running.
func TestIMAPCloseWaitsForSessions(t *testing.T) {
	mem, user := imapMemStore(t)
	store := &slowFolders{MailStore: mem, started: make(chan struct{})}
	srv := newIMAPTestServer(store, frontend.IMAPConfig{}, true)
	c := dialIMAP(t, imapSingle(listenIMAP(t, srv, false)), 0, user)
	go c.List("", "*", nil).Collect()
	<-store.started
	srv.Close()
	if !store.done.Load() {
		t.Fatal("Close returned while a session's command was still reading the store")
	}
}

// closesWithin fails the test unless f returns within d.
func closesWithin(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// A client that stops reading while big answers are owed is cut off at
// the write timeout, instead of holding its slot, and the server's Close
// for ever.
func TestIMAPClientThatStopsReading(t *testing.T) {
	store, user := imapMemStore(t)
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 1024)
	if _, err := store.Append(context.Background(), user, "INBOX", nil, time.Time{}, strings.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	srv := newIMAPTestServer(store, frontend.IMAPConfig{WriteTimeout: 300 * time.Millisecond}, true)
	c, err := net.Dial("tcp", listenIMAP(t, srv, false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "a LOGIN %s %s\r\nb SELECT INBOX\r\n", user, imapPassword)
	for line := ""; !strings.HasPrefix(line, "b OK"); {
		if line, err = r.ReadString('\n'); err != nil {
			t.Fatalf("before the FETCHes: %v", err)
		}
	}
	for i := range 40 { // 40 MiB owed: far more than the socket buffers hold
		fmt.Fprintf(c, "f%d FETCH 1 BODY[]\r\n", i)
	}
	time.Sleep(time.Second) // the server's writes block, then time out
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(io.Discard, c) // what was sent, then the end
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the session outlived its write timeout")
	}
	closesWithin(t, 5*time.Second, "Close", func() { srv.Close() })
}

// A client on the implicit-TLS port that never starts its handshake is
// dropped at the pre-login timer.
func TestIMAPSilentTLSClientDropped(t *testing.T) {
	store, _ := imapMemStore(t)
	tlsCfg, _ := testtls.Config(t)
	srv := newIMAPTestServer(store, frontend.IMAPConfig{TLS: tlsCfg, PreAuthTimeout: 500 * time.Millisecond}, false)
	c, err := net.Dial("tcp", listenIMAP(t, srv, true))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the silent connection was not closed by the server: %v", err)
	}
	closesWithin(t, 5*time.Second, "Close", func() { srv.Close() })
}

// TestIMAPRefusedLiteralKeepsTheStream: after a synchronizing literal is
// refused (NO [TOOBIG] instead of "+"), imapConn still follows the
// client's commands: an ID line inside the next APPEND's message is
// message data, stored as sent, not a command to rewrite.
func TestIMAPRefusedLiteralKeepsTheStream(t *testing.T) {
	store, user := imapMemStore(t)
	msg := "Subject: x\r\n\r\nz ID NIL\r\nend\r\n"
	next := fmt.Sprintf("q APPEND INBOX {%d}\r\n", len(msg))
	// Were the refused literal's octets still expected, they would end
	// inside the next APPEND's message, just before the ID line.
	refused := len(next) + len("Subject: x\r\n")
	addr := startIMAP(t, store, frontend.IMAPConfig{MaxAppendBytes: int64(refused - 1)}, true)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	until := func(prefix string) string {
		t.Helper()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
	}
	until("* OK")
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, imapPassword)
	until("a OK")
	fmt.Fprintf(c, "p APPEND INBOX {%d}\r\n", refused)
	if l := until("p "); !strings.HasPrefix(l, "p NO [TOOBIG]") {
		t.Fatalf("APPEND over the limit: %q", l)
	}
	fmt.Fprint(c, next)
	until("+")
	fmt.Fprintf(c, "%s\r\n", msg)
	if l := until("q "); !strings.HasPrefix(l, "q OK") {
		t.Fatalf("APPEND: %q", l)
	}
	v, err := store.View(context.Background(), user, "INBOX")
	if err != nil || len(v.Messages) != 1 {
		t.Fatalf("INBOX: %d messages, %v; want 1", len(v.Messages), err)
	}
	b, err := store.OpenBody(context.Background(), v.Messages[0].Hash)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != msg {
		t.Errorf("stored %q, want %q", got, msg)
	}
}

// A mailbox has at most MaxConnsPerUserIP logged-in sessions from one
// address: the next LOGIN gets NO [UNAVAILABLE] until one ends, and is
// counted as "limited", not "ok"; another mailbox from the same address
// is not affected.
func TestIMAPMaxConnsPerUserIP(t *testing.T) {
	store, user := imapMemStore(t)
	other := "other@example.com"
	store.AddMailbox(other, imapPassword)
	auth := pop3TestAuth(store, true)
	reg := prometheus.NewRegistry()
	if err := auth.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	srv := frontend.NewIMAPServer(store, auth, frontend.IMAPConfig{MaxConnsPerUserIP: 2}, imapTestLogger())
	t.Cleanup(func() { srv.Close() })
	addr := listenIMAP(t, srv, false)
	first := dialIMAPRaw(t, addr, user)
	dialIMAPRaw(t, addr, user)
	third := dialIMAPRaw(t, addr, "")
	login := fmt.Sprintf("LOGIN %q %q", user, imapPassword)
	if _, tagged := third.cmd(login); !strings.HasPrefix(tagged, "NO [UNAVAILABLE]") {
		t.Fatalf("a third LOGIN: %q, want NO [UNAVAILABLE]", tagged)
	}
	dialIMAPRaw(t, addr, other) // fails the test if refused
	for result, want := range map[string]float64{"ok": 3, "limited": 1} {
		if got, err := counterValue(reg, "powermail_logins_total", map[string]string{"result": result}); err != nil || got != want {
			t.Errorf("logins %s: %v (%v), want %v", result, got, err, want)
		}
	}
	first.ok("LOGOUT")
	imapEventually(t, 5*time.Second, "the slot freed by LOGOUT", func() bool {
		_, tagged := third.cmd(login)
		return strings.HasPrefix(tagged, "OK")
	})
}
