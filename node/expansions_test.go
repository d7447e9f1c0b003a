package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"powermail/fsm"
)

// A list with a member being removed makes each RCPT confirm on fresh
// state (a read barrier) that the member is left out. Within one
// transaction the list is expanded once before a barrier and once
// after: later sub-addresses of it reuse both, and still leave the
// member out. A lookup that begins with the transaction's reads under
// its limit runs to its end; the next RCPT is deferred
// (ErrExpansionLimit).
func TestResolveWithExpansions(t *testing.T) {
	c := deliveryCluster(t)
	l := c.leader(time.Second)
	n := c.follower()
	ctx := ctxT(t, 20*time.Second)
	var members []string
	var boxes []fsm.NewMailbox
	for i := range 60 {
		members = append(members, fmt.Sprintf("m%d@example.com", i))
		boxes = append(boxes, fsm.NewMailbox{Address: members[i]})
	}
	mustApply(t, l, &fsm.MailboxAdd{Mailboxes: boxes})
	mustApply(t, l, &fsm.ForwardAdd{Address: "big@example.com", Targets: members})
	removing := true
	mustApply(t, l, &fsm.MailboxUpdate{Address: members[7], Removing: &removing, Remover: "test"})
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	want := slices.Delete(slices.Clone(members), 7, 8)

	exp := NewExpansions()
	tctx := WithExpansions(ctx, exp)
	res, err := n.Resolve(tctx, "big+0@example.com")
	if err != nil || !slices.Equal(res.Mailboxes, want) {
		t.Fatalf("big+0: %v, %v", res.Mailboxes, err)
	}
	first := exp.Reads()
	if first < 2*len(members) {
		t.Fatalf("the first RCPT read %d records: the list was not expanded before and after the barrier", first)
	}
	for i := 1; i <= 20; i++ {
		res, err := n.Resolve(tctx, fmt.Sprintf("big+%d@example.com", i))
		if err != nil || !slices.Equal(res.Mailboxes, want) {
			t.Fatalf("big+%d: %v, %v", i, res.Mailboxes, err)
		}
	}
	if later := exp.Reads() - first; later > 20*8 {
		t.Fatalf("20 later RCPTs read %d records, want at most 8 each", later)
	}

	exp = &Expansions{memo: fsm.NewExpansionMemo(), limit: 10}
	tctx = WithExpansions(ctx, exp)
	for _, rcpt := range []string{"a@example.com", "big@example.com"} {
		if _, err := n.Resolve(tctx, rcpt); err != nil {
			t.Fatalf("%s, begun under the limit: %v", rcpt, err)
		}
	}
	if exp.Reads() <= 10 || !exp.Exhausted() {
		t.Fatalf("%d reads", exp.Reads())
	}
	if _, err := n.Resolve(tctx, "b@example.com"); !errors.Is(err, ErrExpansionLimit) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("RCPT past the limit: %v, want ErrExpansionLimit", err)
	}
}
