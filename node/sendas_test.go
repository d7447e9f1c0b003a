package node

import (
	"testing"
	"time"

	"powermail/fsm"
)

// SendAsAlias grants an address whose own forward names the mailbox,
// spelt with ASCII case changed or a +detail added, and a Unicode
// domain for its A-labels; not a lookalike that only Unicode case
// folding equates (the Kelvin sign for K), a target reached through
// another forward, or a sub-address of someone else's mailbox or alias,
// even one whose own forward names the mailbox; a forward just made
// through another node is found.
func TestSendAsAlias(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, &fsm.DomainAdd{Name: "xn--bcher-kva.example"})
	mustApply(t, l, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "kim@example.com", Targets: []string{"A@example.com"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "via@example.com", Targets: []string{"kim@example.com"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "info@xn--bcher-kva.example", Targets: []string{"a@example.com"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "kim+both@example.com", Targets: []string{"a@example.com", "b@example.com"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "b+a@example.com", Targets: []string{"a@example.com"}})

	n := c.follower()
	ctx := ctxT(t, 5*time.Second)
	for addr, want := range map[string]bool{
		"kim@example.com":      true,
		"KIM+x@example.com":    true,
		"info@bücher.example":  true,
		"\u212Aim@example.com": false, // Kelvin sign
		"via@example.com":      false,
		"kim+both@example.com": true,
		"b+a@example.com":      false, // under b's mailbox
		"b@example.com":        false,
		"@example.com":         false,
		"not an address":       false,
		"kim@elsewhere.net":    false,
	} {
		if got, err := n.SendAsAlias(ctx, "a@example.com", addr); err != nil || got != want {
			t.Errorf("a sending as %q: %v, %v; want %v", addr, got, err, want)
		}
	}
	for _, addr := range []string{"kim@example.com", "kim+both@example.com"} {
		if got, _ := n.SendAsAlias(ctx, "b@example.com", addr); got {
			t.Errorf("b may send as %s, under a's alias", addr)
		}
	}
	// Made through the leader and asked of a follower at once: a miss
	// is read again after a read-index barrier.
	mustApply(t, l, &fsm.ForwardAdd{Address: "new@example.com", Targets: []string{"b@example.com"}})
	if got, err := n.SendAsAlias(ctx, "b@example.com", "new@example.com"); err != nil || !got {
		t.Errorf("an alias just made: %v, %v", got, err)
	}
}
