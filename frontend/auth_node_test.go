package frontend_test

import (
	"context"
	"errors"
	"testing"
	"time"

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
	fastest := map[string]time.Duration{}
	for range 3 {
		for _, user := range users {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			start := time.Now()
			_, err := n.Authenticate(ctx, user, "guess")
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
