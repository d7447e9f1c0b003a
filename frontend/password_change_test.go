package frontend_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/node"
	"powermail/node/nodetest"
)

// Sessions logged in with a password that has since been changed end as
// a disabled mailbox's do, with a reply that asks for the new password;
// sessions logged in with the new one, other mailboxes' sessions, and
// every session after a change of quota go on (frontend/DESIGN.md). The
// changes go through the admin API, as an administrator makes them.

// changePassword sets addr's password through node 0's admin API.
func changePassword(c *nodetest.Cluster, addr, password string) {
	c.Admin(0, "POST", "/v1/mailboxes/"+url.PathEscape(addr)+"/password", fmt.Sprintf(`{"password":%q}`, password))
}

// setQuota sets addr's quota through node 0's admin API.
func setQuota(c *nodetest.Cluster, addr string, quota int64) {
	c.Admin(0, "POST", "/v1/mailboxes/"+url.PathEscape(addr)+"/quota", fmt.Sprintf(`{"quota_bytes":%d}`, quota))
}

// waitApplied waits until n has applied a change of addr's mailbox that
// done tells: AccountActive reads n's own state, which a follower
// reaches within a heartbeat.
func waitApplied(t *testing.T, n *node.Node, addr, what string, done func(hash string, quota int64) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mb, err := n.State().Mailbox(addr)
		if err == nil && done(mb.PasswordHash, mb.QuotaBytes) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s of %s not applied on %s after 5 s: %v", what, addr, n.ID(), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// storedHash is addr's password hash as n holds it.
func storedHash(t *testing.T, n *node.Node, addr string) string {
	t.Helper()
	mb, err := n.State().Mailbox(addr)
	if err != nil {
		t.Fatal(err)
	}
	return mb.PasswordHash
}

// stillOpen fails unless c's connection stays open for d.
func (c *imapRecorded) stillOpen(t *testing.T, what string, d time.Duration) {
	t.Helper()
	select {
	case <-c.Closed():
		t.Fatalf("%s: session ended; received:\n%s", what, c.rec.received())
	case <-time.After(d):
	}
}

// TestIMAPSessionsEndWhenThePasswordIsChanged: on a follower, after a
// change of quota every session goes on; after a password change a
// session logged in with the old password gets BYE [EXPIRED] at its next
// command, which is not executed, and one in IDLE at its next poll; a
// session logged in with the new password, and another mailbox's, go
// on; the old password logs in no more.
func TestIMAPSessionsEndWhenThePasswordIsChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	const alice, bob = "alice@example.com", "bob@example.com"
	c, follower, addr := startRevokeIMAP(t, alice, bob)

	working := dialIMAPSelected(t, addr, alice)
	idler := dialIMAPSelected(t, addr, alice)
	idle, err := idler.Idle()
	if err != nil {
		t.Fatal(err)
	}
	other := dialIMAPSelected(t, addr, bob)

	// A change of quota is not a change of credentials.
	setQuota(c, alice, 1<<20)
	waitApplied(t, follower, alice, "quota", func(_ string, q int64) bool { return q == 1<<20 })
	if err := working.Noop().Wait(); err != nil {
		t.Fatalf("NOOP after a quota change: %v", err)
	}
	idler.stillOpen(t, "IDLE after a quota change", 2*imapRevokedPoll)

	old := storedHash(t, follower, alice)
	const newPassword = "new-pw"
	changePassword(c, alice, newPassword)
	waitApplied(t, follower, alice, "password", func(h string, _ int64) bool { return h != old })
	by := time.Now().Add(imapRevokedPoll + time.Second) // slack for a loaded machine
	idler.wantBye(t, "IDLE after the password change", "EXPIRED", time.Until(by))
	_ = idle.Wait()

	if err := working.Create("Evidence", nil).Wait(); err == nil {
		t.Fatal("CREATE after the password change succeeded")
	}
	working.wantBye(t, "command after the password change", "EXPIRED", 5*time.Second)
	if _, err := follower.State().Folder(alice, "Evidence"); err == nil {
		t.Fatal("folder created after the password change")
	}

	fresh := dialIMAPRecordedAs(t, addr, alice, newPassword)
	freshIdle, err := fresh.Idle()
	if err != nil {
		t.Fatal(err)
	}
	fresh.stillOpen(t, "IDLE logged in with the new password", 2*imapRevokedPoll)
	if err := freshIdle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := freshIdle.Wait(); err != nil {
		t.Fatalf("IDLE logged in with the new password: %v", err)
	}
	if err := fresh.Create("Kept", nil).Wait(); err != nil {
		t.Fatalf("CREATE logged in with the new password: %v", err)
	}
	if err := other.Noop().Wait(); err != nil {
		t.Fatalf("bob's NOOP: %v", err)
	}

	anon := dialIMAPAnon(t, addr)
	wantIMAPCode(t, "login with the old password", anon.Login(alice, imapPassword).Wait(), imap.ResponseCodeAuthenticationFailed)
}

// TestPOP3SessionEndsWhenThePasswordIsChanged: after a change of quota a
// POP3 session goes on; after a password change a session logged in with
// the old password gets -ERR [AUTH] naming the change at its next
// command and is closed, its deletions not committed; one logged in with
// the new password, and another mailbox's, go on and commit.
func TestPOP3SessionEndsWhenThePasswordIsChanged(t *testing.T) {
	const alice, bob = "alice@example.com", "bob@example.com"
	c, n, addr := startRevokePOP3(t, alice, bob)

	a := pop3DeleteFirst(t, addr, alice)
	b := pop3DeleteFirst(t, addr, bob)

	setQuota(c, alice, 1<<20)
	time.Sleep(5 * time.Millisecond) // past AccountCheckInterval: the next command is checked
	a.ok("STAT")

	changePassword(c, alice, "new-pw")
	time.Sleep(5 * time.Millisecond)
	if r := a.fail("QUIT", "AUTH"); !strings.Contains(r, "password") {
		t.Errorf("reply %q does not say the password was changed", r)
	}
	a.expectClosed()
	time.Sleep(5 * time.Millisecond)
	b.ok("STAT")
	b.quit()

	wantPOP3Ended(t, n, addr, alice, bob, "the old password's DELE")
	fresh := pop3Dial(t, addr) // the maildrop lock was given back
	fresh.login(alice, "new-pw")
	fresh.ok("DELE 1")
	time.Sleep(5 * time.Millisecond)
	fresh.ok("STAT")
	fresh.quit()
	if got := inboxLen(t, n, alice); got != 1 {
		t.Errorf("alice holds %d messages, want 1: the new password's DELE was not committed", got)
	}
}
