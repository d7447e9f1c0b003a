package frontend_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/node"
)

// dialIMAPFrom connects to the IMAP server at addr from the loopback
// address local (127.0.0.0/8 is all loopback on Linux), so that the
// server counts the client as that IP.
func dialIMAPFrom(t *testing.T, addr, local string) *imapclient.Client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	c := imapclient.New(nc, nil)
	t.Cleanup(func() { c.Close() })
	if err := c.WaitGreeting(); err != nil {
		t.Fatalf("greeting from %s: %v", local, err)
	}
	return c
}

// imapLoginTime logs user in over a new connection from local, and
// returns how long the LOGIN took and its error.
func imapLoginTime(t *testing.T, addr, local, user, password string) (time.Duration, error) {
	t.Helper()
	c := dialIMAPFrom(t, addr, local)
	start := time.Now()
	err := c.Login(user, password).Wait()
	return time.Since(start), err
}

// A successful login forgives only the failures that came from its own
// client. An attacker at one address fails three times on an account;
// its owner, at another, mistypes once and then logs in. A login from a
// third address then still waits the delay of the attacker's three
// failures (four times FailureDelay), and no more: the owner's typo was
// forgiven. Before, the owner's success cleared the account's count,
// and a password guesser spread over addresses started over whenever
// its victim logged in.
func TestIMAPLoginSuccessForgivesOnlyItsOwnClient(t *testing.T) {
	const delay = 100 * time.Millisecond
	store, user := imapMemStore(t)
	log := imapTestLogger()
	auth := frontend.NewAuthenticator(store, frontend.AuthConfig{AllowInsecure: true, FailureDelay: delay, MaxDelay: 20 * delay}, log)
	addr := serveLoopback(t, frontend.NewIMAPServer(store, auth, frontend.IMAPConfig{}, log))

	for i := range 3 {
		if _, err := imapLoginTime(t, addr, "127.0.0.2", user, "guess"); err == nil {
			t.Fatalf("attacker's guess %d logged in", i)
		}
	}
	if _, err := imapLoginTime(t, addr, "127.0.0.3", user, "typo"); err == nil {
		t.Fatal("the owner's typo logged in")
	}
	if _, err := imapLoginTime(t, addr, "127.0.0.3", user, imapPassword); err != nil {
		t.Fatalf("the owner after a typo: %v", err)
	}
	d, err := imapLoginTime(t, addr, "127.0.0.4", user, imapPassword)
	if err != nil {
		t.Fatalf("login from a third address: %v", err)
	}
	if d < 4*delay {
		t.Errorf("a login after the owner's answered after %v; the attacker's three failures earned %v", d, 4*delay)
	}
	if d >= 8*delay {
		t.Errorf("a login after the owner's answered after %v, as if the owner's typo still counted (%v)", d, 8*delay)
	}
}

// The owner's own typo does not outlast the owner's login: after one
// wrong and one right password from one address, a login from another
// address on the account waits nothing, as before.
func TestLoginOwnTypoForgivenBySuccess(t *testing.T) {
	const delay = 300 * time.Millisecond
	a, _ := throttleAuth(t, delay, 10*delay)
	login := func(ip, password string) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := a.Login(ctx, ip, pop3User, password, true)
		return time.Since(start), err
	}
	if _, err := login("2001:db8:1:2::1", "typo"); !errors.Is(err, node.ErrAuthFailed) {
		t.Fatalf("typo: %v", err)
	}
	// Another address of the same /84 is the same client (node.ClientKey).
	if _, err := login("2001:db8:1:2::2", "secret"); err != nil {
		t.Fatalf("right password after a typo: %v", err)
	}
	if d, err := login("198.51.100.7", "secret"); err != nil || d >= delay {
		t.Errorf("login from elsewhere after the owner's: %v after %v, want at once", err, d)
	}
}

// The failures of an account that a success from another client leaves
// standing still forget themselves after Forget without a failure.
func TestLoginFailuresLeftBySuccessAreForgotten(t *testing.T) {
	const delay = 200 * time.Millisecond
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	a := frontend.NewAuthenticator(f, frontend.AuthConfig{FailureDelay: delay, MaxDelay: 10 * delay, Forget: 600 * time.Millisecond},
		slog.New(slog.DiscardHandler))
	login := func(ip, password string) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := a.Login(ctx, ip, pop3User, password, true)
		return time.Since(start), err
	}
	if _, err := login("192.0.2.1", "guess"); !errors.Is(err, node.ErrAuthFailed) {
		t.Fatalf("guess: %v", err)
	}
	if d, err := login("198.51.100.1", "secret"); err != nil || d < delay {
		t.Fatalf("owner after a guess elsewhere: %v after %v, want the guess's delay %v", err, d, delay)
	}
	time.Sleep(700 * time.Millisecond)
	if d, err := login("198.51.100.2", "secret"); err != nil || d >= delay {
		t.Errorf("login after Forget: %v after %v, want at once", err, d)
	}
}
