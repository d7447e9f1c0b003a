package frontend_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// imapRevokedPoll is the test servers' IDLE poll interval.
const imapRevokedPoll = 300 * time.Millisecond

// recordingConn keeps a copy of what the server sent, for what
// imapclient does not report: the text of a BYE after the greeting.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

func (c *recordingConn) received() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got.String()
}

// imapRecorded is a logged-in imapclient and what it received.
type imapRecorded struct {
	*imapclient.Client
	rec *recordingConn
}

func dialIMAPRecorded(t *testing.T, addr, user string) *imapRecorded {
	t.Helper()
	return dialIMAPRecordedAs(t, addr, user, imapPassword)
}

// dialIMAPRecordedAs is dialIMAPRecorded with a password of its own.
func dialIMAPRecordedAs(t *testing.T, addr, user, password string) *imapRecorded {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingConn{Conn: nc}
	c := imapclient.New(rec, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, password).Wait(); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return &imapRecorded{Client: c, rec: rec}
}

// wantRevokedBye checks that the session ended, within d, with the BYE
// of a revoked login as its last line.
func (c *imapRecorded) wantRevokedBye(t *testing.T, what string, d time.Duration) {
	t.Helper()
	c.wantBye(t, what, "CONTACTADMIN", d)
}

// wantBye checks that the session ended, within d, with a BYE of the
// response code code as its last line.
func (c *imapRecorded) wantBye(t *testing.T, what, code string, d time.Duration) {
	t.Helper()
	select {
	case <-c.Closed():
	default:
		select {
		case <-c.Closed():
		case <-time.After(d):
			t.Fatalf("%s: connection still open after %v", what, d)
		}
	}
	got := c.rec.received()
	lines := strings.Split(strings.TrimSuffix(got, "\r\n"), "\r\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "* BYE ["+code+"] ") {
		t.Fatalf("%s: last line %q, want * BYE [%s]; received:\n%s", what, last, code, got)
	}
}

// dialIMAPSelected is dialIMAPRecorded with INBOX selected.
func dialIMAPSelected(t *testing.T, addr, user string) *imapRecorded {
	t.Helper()
	c := dialIMAPRecorded(t, addr, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// startRevokeIMAP starts a three-node cluster holding the mailboxes
// boxes (password imapPassword) and an IMAP server on its follower n2
// that checks the login's account before each command and polls IDLE
// every imapRevokedPoll; it returns the cluster, n2 and the server's
// address.
func startRevokeIMAP(t *testing.T, boxes ...string) (*nodetest.Cluster, *node.Node, string) {
	t.Helper()
	c := nodetest.Start(t, 3)
	c.AddMailboxes(imapPassword, boxes...)
	follower := c.Nodes[2]
	addr := startIMAP(t, follower, frontend.IMAPConfig{PollInterval: imapRevokedPoll, AccountCheckInterval: time.Millisecond}, true)
	return c, follower, addr
}

// waitMailbox waits until n has applied the change: AccountActive reads
// n's own state, which a follower reaches within a heartbeat.
func waitMailbox(t *testing.T, n *node.Node, addr string, gone bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mb, err := n.State().Mailbox(addr)
		if gone == (errors.Is(err, fsm.ErrNotFound) || err == nil && mb.Disabled) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s on %s: %+v %v after 5 s", addr, n.ID(), mb, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIMAPSessionsEndWhenTheMailboxIsDisabled: on a follower, a session
// of a mailbox disabled since its login gets BYE at its next command,
// which is not executed; one in IDLE is ended at its next poll; a
// removed mailbox's session ends the same way; another mailbox's
// session goes on.
func TestIMAPSessionsEndWhenTheMailboxIsDisabled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	const alice, bob, carol = "alice@example.com", "bob@example.com", "carol@example.com"
	c, follower, addr := startRevokeIMAP(t, alice, bob, carol)

	working := dialIMAPSelected(t, addr, alice)
	idler := dialIMAPSelected(t, addr, alice)
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}
	idleNone := dialIMAPRecorded(t, addr, alice) // IDLE with no folder selected
	idleNoneCmd, err := idleNone.Idle()
	if err != nil {
		t.Fatal(err)
	}
	other := dialIMAPSelected(t, addr, bob)
	otherIdle := dialIMAPRecorded(t, addr, bob)
	otherIdleCmd, err := otherIdle.Idle()
	if err != nil {
		t.Fatal(err)
	}
	removed := dialIMAPRecorded(t, addr, carol)
	if err := removed.Noop().Wait(); err != nil {
		t.Fatal(err)
	}

	disableMailbox(c, alice, true)
	waitMailbox(t, follower, alice, true)
	// IDLE ends at its next poll: within imapRevokedPoll, and the slack
	// is for a loaded machine (nothing else would end it for 30 min).
	by := time.Now().Add(imapRevokedPoll + time.Second)
	idler.wantRevokedBye(t, "IDLE", time.Until(by))
	idleNone.wantRevokedBye(t, "IDLE without a selected folder", time.Until(by))
	_ = idle.Wait()
	_ = idleNoneCmd.Wait()

	if err := working.Create("Evidence", nil).Wait(); err == nil {
		t.Fatal("CREATE after the disable succeeded")
	}
	working.wantRevokedBye(t, "command after the disable", 5*time.Second)
	if _, err := follower.State().Folder(alice, "Evidence"); !errors.Is(err, fsm.ErrNoFolder) {
		t.Fatalf("folder created after the disable: %v", err)
	}

	// Bob's sessions never noticed.
	if err := other.Noop().Wait(); err != nil {
		t.Fatalf("bob's NOOP: %v", err)
	}
	if err := other.Create("Still", nil).Wait(); err != nil {
		t.Fatalf("bob's CREATE: %v", err)
	}
	if err := otherIdleCmd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := otherIdleCmd.Wait(); err != nil {
		t.Fatalf("bob's IDLE: %v", err)
	}
	if err := otherIdle.Noop().Wait(); err != nil {
		t.Fatalf("bob's NOOP after IDLE: %v", err)
	}

	// A new login of the disabled mailbox fails as any wrong one does.
	anon := dialIMAPAnon(t, addr)
	wantIMAPCode(t, "login of a disabled mailbox", anon.Login(alice, imapPassword).Wait(), imap.ResponseCodeAuthenticationFailed)

	c.Apply(&fsm.MailboxRemove{Address: carol})
	waitMailbox(t, follower, carol, true)
	if _, err := removed.List("", "*", nil).Collect(); err == nil {
		t.Fatal("LIST after the removal succeeded")
	}
	removed.wantRevokedBye(t, "command after the removal", 5*time.Second)
}

// countingNode counts the account checks sessions make.
type countingNode struct {
	*node.Node
	checks atomic.Int64
}

func (n *countingNode) AccountActive(ctx context.Context, login node.Login) error {
	n.checks.Add(1)
	return n.Node.AccountActive(ctx, login)
}

// TestIMAPAccountCheckIsRateLimited: a session asks at most once per
// AccountCheckInterval, counted from its login, however many commands
// it sends; the first command after the interval is checked.
func TestIMAPAccountCheckIsRateLimited(t *testing.T) {
	c := nodetest.Start(t, 1)
	const alice = "alice@example.com"
	c.AddMailboxes(imapPassword, alice)
	store := &countingNode{Node: c.Nodes[0]}
	const every = 2 * time.Second
	addr := startIMAP(t, store, frontend.IMAPConfig{AccountCheckInterval: every}, true)
	cl := dialIMAPRecorded(t, addr, alice)
	loggedIn := time.Now()
	disableMailbox(c, alice, true)
	for time.Since(loggedIn) < every/2 { // a margin for a slow machine
		if err := cl.Noop().Wait(); err != nil {
			t.Fatalf("NOOP within the interval after login: %v", err)
		}
	}
	if n := store.checks.Load(); n != 0 {
		t.Fatalf("%d checks within the interval after login, want 0", n)
	}
	time.Sleep(time.Until(loggedIn.Add(every)))
	_ = cl.Noop().Wait()
	cl.wantRevokedBye(t, "NOOP after the interval", 5*time.Second)
	if n := store.checks.Load(); n != 1 {
		t.Fatalf("%d checks, want 1", n)
	}
}
