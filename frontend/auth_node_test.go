package frontend_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// Every failed login costs the node a full password check, so that the
// time an answer takes does not tell an attacker which addresses exist
// or which mailboxes have no password: a wrong password for a mailbox, a
// mailbox without a password (login disabled) and an unknown address.
// Before, the mailbox without a password was refused without any hash
// work, hundreds of times faster than the others.
//
// The bound cannot flake under load: each kind is timed three times,
// interleaved, and only the fastest run of each is compared. Load only
// makes a run slower, so the fastest is near the unloaded cost, and a
// kind that does the same work cannot be ten times faster than another
// (without the check it was hundreds of times faster).
func TestNodeLoginCostsAHashCheckWhateverTheMailbox(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw", "known@example.com")
	c.Apply(&fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "nopassword@example.com"}}})
	n := c.Nodes[0]

	users := []string{"known@example.com", "nopassword@example.com", "unknown@example.com"}
	fastest := fastestFailures(t, users, func(ctx context.Context, _ int, user string) error {
		_, err := n.Authenticate(ctx, user, "guess")
		return err
	})
	check := fastest[users[0]]
	for _, user := range users[1:] {
		if fastest[user] < check/10 {
			t.Errorf("a failed login for %s takes %v, a wrong password %v: no hash check", user, fastest[user], check)
		}
	}
	t.Logf("fastest of 3: %v", fastest)
}

// fsm admits no argon2id hash that needs more than half of the node's
// default password-check memory, so that two checks of the costliest
// hash it admits fit that budget at once.
func TestArgonMemoryCapFitsThePasswordBudget(t *testing.T) {
	if limit := int64(fsm.MaxArgonMemory) << 10; limit > node.DefaultPasswordMemory/2 {
		t.Errorf("fsm.MaxArgonMemory is %d MiB, over half of node.DefaultPasswordMemory (%d MiB)",
			limit>>20, node.DefaultPasswordMemory>>20)
	}
}

// A failed login is answered no sooner than FailureDelay after its
// password check began, so that the answer does not tell a mailbox with
// an imported bcrypt hash of cost 12 (about 0.3 s a check here) from an
// unknown address (the node's dummy hash: argon2id at the default cost,
// a few hundredths of a second). Before, a first failure was answered
// as soon as its check was done, and the gap showed.
//
// The bare checks are timed first, through the node; then logins
// through an Authenticator whose FailureDelay is twice the bare bcrypt
// check or 400 ms, whichever is more. Each login has an Authenticator of
// its own, so that none has earned a delay. As in the test above, the
// fastest of three interleaved runs is compared: load only makes a run
// slower.
func TestNodeFailedLoginHidesTheHashCost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	n, bare, bareGap := importedHashNode(t)

	delay := max(400*time.Millisecond, 2*bare[imported])
	login := func(ctx context.Context, i int, user string) error {
		a := frontend.NewAuthenticator(n, frontend.AuthConfig{FailureDelay: delay}, slog.New(slog.DiscardHandler))
		start := time.Now()
		_, err := a.Login(ctx, fmt.Sprintf("192.0.2.%d", i+1), user, "guess", true)
		if d := time.Since(start); err != nil && d < delay {
			t.Errorf("%s: failure answered after %v, before FailureDelay %v", user, d, delay)
		}
		return err
	}
	held := fastestFailures(t, []string{imported, unknown}, login)
	if gap := (held[imported] - held[unknown]).Abs(); gap > bareGap/3 {
		t.Errorf("failures answered after %v; their bare checks %v: a gap of %v shows", held, bare, gap)
	}
	t.Logf("fastest of 3: bare %v; with FailureDelay %v: %v", bare, delay, held)
}

// The addresses of importedHashNode's mailbox with a costly hash and of
// no mailbox.
const imported, unknown = "imported@example.com", "unknown@example.com"

// importedHashNode starts a node holding imported, whose hash is an
// imported bcrypt of cost 12, and returns the fastest bare checks of a
// wrong password for imported and unknown, and their gap.
func importedHashNode(t *testing.T) (*node.Node, map[string]time.Duration, time.Duration) {
	t.Helper()
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw", "known@example.com") // and the domain
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 12)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsm.CheckPasswordHash(string(hash)); err != nil {
		t.Fatalf("the node would not import a bcrypt hash of cost 12: %v", err)
	}
	c.Apply(&fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: imported, PasswordHash: string(hash)}}})
	n := c.Nodes[0]
	bare := fastestFailures(t, []string{imported, unknown}, func(ctx context.Context, _ int, user string) error {
		_, err := n.Authenticate(ctx, user, "guess")
		return err
	})
	gap := bare[imported] - bare[unknown]
	if gap < 50*time.Millisecond {
		t.Fatalf("bare checks: %v, no gap to hide", bare)
	}
	return n, bare, gap
}

// fastestFailures runs try three times for each user, interleaved, and
// returns each user's fastest run. Every run must fail with
// ErrAuthFailed.
func fastestFailures(t *testing.T, users []string, try func(ctx context.Context, i int, user string) error) map[string]time.Duration {
	t.Helper()
	fastest := map[string]time.Duration{}
	for round := range 3 {
		for j, user := range users {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			err := try(ctx, round*len(users)+j, user)
			d := time.Since(start)
			cancel()
			if !errors.Is(err, node.ErrAuthFailed) {
				t.Fatalf("%s: %v, want ErrAuthFailed", user, err)
			}
			if f, ok := fastest[user]; !ok || d < f {
				fastest[user] = d
			}
		}
	}
	return fastest
}

// With a FailureDelay below an imported hash's cost, the failures still
// take one time: once a slow check has run, a failure for an unknown
// address is held as long (checkCost).
func TestNodeFailureFloorFollowsSlowHashes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node")
	}
	n, bare, bareGap := importedHashNode(t)
	a := frontend.NewAuthenticator(n, frontend.AuthConfig{FailureDelay: 20 * time.Millisecond}, slog.New(slog.DiscardHandler))
	held := fastestFailures(t, []string{imported, unknown}, func(ctx context.Context, i int, user string) error {
		_, err := a.Login(ctx, fmt.Sprintf("192.0.2.%d", i+1), user, "guess", true)
		return err
	})
	if gap := (held[imported] - held[unknown]).Abs(); gap > bareGap/3 {
		t.Errorf("failures answered after %v; their bare checks %v: a gap of %v shows", held, bare, gap)
	}
	t.Logf("fastest of 3: bare %v; held %v", bare, held)
}
