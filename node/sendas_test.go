package node

import (
	"testing"
	"time"

	"powermail/fsm"
)

// SendAsAlias grants an address whose own forward names the mailbox,
// spelt with ASCII case changed or a +detail added, and a Unicode
// domain for its A-labels; not a lookalike that only Unicode case
// folding equates (the Kelvin sign for K), nor a target reached
// through another forward; a forward just made through another node is
// found.
func TestSendAsAlias(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, &fsm.DomainAdd{Name: "xn--bcher-kva.example"})
	mustApply(t, l, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "kim@example.com", Targets: []string{"A@example.com"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "via@example.com", Targets: []string{"kim@example.com"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "info@xn--bcher-kva.example", Targets: []string{"a@example.com"}})

	n := c.follower()
	ctx := ctxT(t, 5*time.Second)
	for addr, want := range map[string]bool{
		"kim@example.com":      true,
		"KIM+x@example.com":    true,
		"info@bücher.example":  true,
		"\u212Aim@example.com": false, // Kelvin sign
		"via@example.com":      false,
		"b@example.com":        false,
		"@example.com":         false,
		"not an address":       false,
		"kim@elsewhere.net":    false,
	} {
		if got, err := n.SendAsAlias(ctx, "a@example.com", addr); err != nil || got != want {
			t.Errorf("a sending as %q: %v, %v; want %v", addr, got, err, want)
		}
	}
	if got, _ := n.SendAsAlias(ctx, "b@example.com", "kim@example.com"); got {
		t.Error("b may send as a's alias")
	}
	// Made through the leader and asked of a follower at once: a miss
	// is read again after a read-index barrier.
	mustApply(t, l, &fsm.ForwardAdd{Address: "new@example.com", Targets: []string{"b@example.com"}})
	if got, err := n.SendAsAlias(ctx, "b@example.com", "new@example.com"); err != nil || !got {
		t.Errorf("an alias just made: %v, %v", got, err)
	}
}
