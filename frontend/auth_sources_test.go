package frontend_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
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
	addr, user := attackedIMAP(t, delay)
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
	login := func(ip, password string) (time.Duration, error) { return timedLogin(a, ip, password) }
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
	login := func(ip, password string) (time.Duration, error) { return timedLogin(a, ip, password) }
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

// The client that logged in to an account keeps logging in to it at
// once while failures from elsewhere still count: its next connections
// skip the account's line and its delay (its own address's still
// apply), until it fails on the account itself. An attacker at one
// address fails three times; the owner, at another, logs in once after
// their delay, and then four connections at once log in without it,
// while a third address still waits. Before, each of the four waited
// the account's delay in turn, as long as the attacker's failures were
// remembered (Forget, 15 minutes by default).
func TestIMAPLoginOwnersClientSkipsTheAccountsDelay(t *testing.T) {
	const delay = 100 * time.Millisecond
	addr, user := attackedIMAP(t, delay)
	if d, err := imapLoginTime(t, addr, "127.0.0.3", user, imapPassword); err != nil || d < 4*delay {
		t.Fatalf("the owner's first login: %v after %v, want the account's delay %v", err, d, 4*delay)
	}
	clients := make([]*imapclient.Client, 4)
	for i := range clients {
		clients[i] = dialIMAPFrom(t, addr, "127.0.0.3")
	}
	start := time.Now()
	cmds := make([]*imapclient.Command, len(clients))
	for i, c := range clients {
		cmds[i] = c.Login(user, imapPassword)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("the owner's connection %d: %v", i, err)
		}
	}
	if d := time.Since(start); d >= 4*delay {
		t.Errorf("four logins of the owner's client took %v, as if each waited the account's delay (%v)", d, 4*delay)
	}
	if d, err := imapLoginTime(t, addr, "127.0.0.4", user, imapPassword); err != nil || d < 4*delay {
		t.Errorf("a third address: %v after %v, want the account's delay %v", err, d, 4*delay)
	}

	// A failure of the owner's client on the account ends its pass: its
	// next login waits the delay of the account's four failures (and of
	// its address's one), and the login after that is at once again.
	if _, err := imapLoginTime(t, addr, "127.0.0.3", user, "typo"); err == nil {
		t.Fatal("a typo logged in")
	}
	if d, err := imapLoginTime(t, addr, "127.0.0.3", user, imapPassword); err != nil || d < 8*delay {
		t.Errorf("the owner after a typo: %v after %v, want the account's delay %v", err, d, 8*delay)
	}
	if d, err := imapLoginTime(t, addr, "127.0.0.3", user, imapPassword); err != nil || d >= 4*delay {
		t.Errorf("the owner after logging in again: %v after %v, want its address's delay %v only", err, d, delay)
	}
}

// A pass does not let a client check passwords in parallel: the
// attempts of a client with a pass stand in a line of their own, and
// once one fails (ending the pass) the next waits the account's delay
// too. Someone behind the owner's address (a NAT, the same IPv6 /84)
// who sends guesses at once thus gets one check, not one per
// connection.
func TestLoginPassDoesNotAllowParallelGuesses(t *testing.T) {
	const delay = 200 * time.Millisecond
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	store := &countingChecker{PasswordChecker: slowerChecker{f, 50 * time.Millisecond}}
	a := frontend.NewAuthenticator(store, frontend.AuthConfig{FailureDelay: delay, MaxDelay: 10 * delay},
		slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.Login(ctx, "192.0.2.1", pop3User, "guess", true); !errors.Is(err, node.ErrAuthFailed) {
		t.Fatalf("guess: %v", err)
	}
	if _, err := a.Login(ctx, "198.51.100.1", pop3User, "secret", true); err != nil {
		t.Fatalf("owner: %v", err)
	}
	before := store.checks.Load()
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			if _, err := a.Login(ctx, "198.51.100.1", pop3User, "guess", true); err == nil {
				t.Error("a guess logged in")
			}
		})
	}
	time.Sleep(delay / 2)
	if got := store.checks.Load() - before; got != 1 {
		t.Errorf("%d checks of six parallel guesses from the owner's address within %v, want 1", got, delay/2)
	}
	wg.Wait()
}

// slowerChecker is a PasswordChecker whose every check takes d more,
// so that attempts sent at once overlap in their checks.
type slowerChecker struct {
	frontend.PasswordChecker
	d time.Duration
}

func (c slowerChecker) Authenticate(ctx context.Context, user, password string) (node.Login, error) {
	time.Sleep(c.d)
	return c.PasswordChecker.Authenticate(ctx, user, password)
}

// attackedIMAP serves IMAP with logins slowed by delay per failure, and
// has 127.0.0.2 fail three logins on the account it returns.
func attackedIMAP(t *testing.T, delay time.Duration) (addr, user string) {
	t.Helper()
	store, user := imapMemStore(t)
	log := imapTestLogger()
	auth := frontend.NewAuthenticator(store, frontend.AuthConfig{AllowInsecure: true, FailureDelay: delay, MaxDelay: 20 * delay}, log)
	addr = serveLoopback(t, frontend.NewIMAPServer(store, auth, frontend.IMAPConfig{}, log))
	for i := range 3 {
		if _, err := imapLoginTime(t, addr, "127.0.0.2", user, "guess"); err == nil {
			t.Fatalf("attacker's guess %d logged in", i)
		}
	}
	return addr, user
}

// timedLogin logs pop3User in through a from ip and says how long the
// answer took.
func timedLogin(a *frontend.Authenticator, ip, password string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := a.Login(ctx, ip, pop3User, password, true)
	return time.Since(start), err
}
