package node

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"powermail/fsm"
)

// A list reaches its members when one of them is over its quota or
// being removed: both are left out, the full one named in Full for the
// sender's notice (its quota bounds it), and only an address none of
// whose places could take the message is refused (452 4.2.2, 450
// 4.2.1) as a single mailbox is. Before, one such member had RCPT
// refuse the whole list.
func TestListReachesItsMembersPastOneFullOrLeaving(t *testing.T) {
	c := deliveryCluster(t)
	l := c.leader(time.Second)
	n := c.follower()
	ctx := ctxT(t, 20*time.Second)
	if _, err := n.Deliver(ctx, Message{Mailboxes: []string{"full@example.com"}, Received: time.Now()}, bytes.NewReader([]byte("0123456789abcdefghij"))); err != nil {
		t.Fatal(err)
	}
	removing := true
	mustApply(t, l, &fsm.MailboxUpdate{Address: "b@example.com", Removing: &removing, Remover: "test"})
	for addr, targets := range map[string][]string{
		"list@example.com":     {"a@example.com", "b@example.com", "full@example.com"},
		"fulllist@example.com": {"full@example.com", "b@example.com"},
		"onlyfull@example.com": {"full@example.com"},
		"leaving@example.com":  {"b@example.com"},
		"mixed@example.com":    {"b@example.com", "full@example.com", "x@elsewhere.net"},
	} {
		mustApply(t, l, &fsm.ForwardAdd{Address: addr, Targets: targets})
	}
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := n.Resolve(ctx, "list@example.com")
	if err != nil || !slices.Equal(res.Mailboxes, []string{"a@example.com"}) || !slices.Equal(res.Full, []string{"full@example.com"}) || res.FullMore != 0 {
		t.Fatalf("list with a member being removed and a full one: %+v, %v", res, err)
	}
	if res, err := n.Resolve(ctx, "mixed@example.com"); err != nil || len(res.Mailboxes) != 0 || len(res.External) != 1 || !slices.Equal(res.Full, []string{"full@example.com"}) {
		t.Errorf("list of a leaving, a full and an outside member: %+v, %v", res, err)
	}
	for addr, want := range map[string]error{
		"b@example.com":        ErrMailboxRemoving,
		"leaving@example.com":  ErrMailboxRemoving,
		"full@example.com":     ErrOverQuota,
		"onlyfull@example.com": ErrOverQuota,
		"fulllist@example.com": ErrOverQuota,
	} {
		if _, err := n.Resolve(ctx, addr); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", addr, err, want)
		}
	}
	got, err := n.Deliver(ctx, Message{Mailboxes: res.Mailboxes, Received: time.Now()}, bytes.NewReader([]byte("to the list")))
	if err != nil || len(got.Rejected) != 0 {
		t.Fatalf("delivery to the list: %+v, %v", got, err)
	}
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]int{"a@example.com": 1, "full@example.com": 1, "b@example.com": 0} {
		if msgs, err := n.State().Messages(addr, "INBOX", 0, 0); err != nil || len(msgs) != want {
			t.Errorf("%s holds %d messages (%v), want %d", addr, len(msgs), err, want)
		}
	}

	// The address's own mailbox still refuses it, also beside a forward
	// that keeps a copy there: the forward's target does not carry it.
	mustApply(t, l, &fsm.ForwardAdd{Address: "full@example.com", Targets: []string{"a@example.com"}, KeepCopy: true})
	mustApply(t, l, &fsm.ForwardAdd{Address: "b@example.com", Targets: []string{"a@example.com"}, KeepCopy: true})
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]error{"full@example.com": ErrOverQuota, "b@example.com": ErrMailboxRemoving} {
		if res, err := n.Resolve(ctx, addr); !errors.Is(err, want) {
			t.Errorf("%s, which keeps a copy beside its forward: %+v, %v, want %v", addr, res, err, want)
		}
	}
}
