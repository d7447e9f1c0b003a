package node

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// A list most of whose members are full gives its sender one notice
// naming MaxFullNamed of them, each failed with 5.2.2, and the number
// of the others: a list of thousands of full mailboxes gives no notice
// of thousands of parts. Resolve itself names no more than that.
func TestFullMembersNoticeIsBounded(t *testing.T) {
	c := deliveryCluster(t)
	l := c.leader(time.Second)
	n := c.follower()
	ctx := ctxT(t, 30*time.Second)
	var add fsm.MailboxAdd
	var members []string
	for i := range MaxFullNamed + 10 {
		addr := fmt.Sprintf("m%03d@example.com", i)
		add.Mailboxes = append(add.Mailboxes, fsm.NewMailbox{Address: addr, QuotaBytes: 1})
		members = append(members, addr)
	}
	mustApply(t, l, &add)
	if _, err := n.Deliver(ctx, Message{Mailboxes: members, Received: time.Now()}, bytes.NewReader([]byte("filler"))); err != nil {
		t.Fatal(err)
	}
	mustApply(t, l, &fsm.ForwardAdd{Address: "big@example.com", Targets: append(slices.Clone(members), "a@example.com")})
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := n.Resolve(ctx, "big@example.com")
	if err != nil || !slices.Equal(res.Mailboxes, []string{"a@example.com"}) || len(res.Full) != MaxFullNamed || res.FullMore != 10 {
		t.Fatalf("list of %d full members and a: mailboxes %v, %d full named and %d more, %v", len(members), res.Mailboxes, len(res.Full), res.FullMore, err)
	}
	msg := Message{From: "c@example.com", Mailboxes: res.Mailboxes, Received: time.Now(), Notify: &DSNRequest{
		Failure: []NotifyRcpt{{Address: "big@example.com", Mailboxes: res.Mailboxes, Full: res.Full, FullMore: res.FullMore}}}}
	if got, err := n.Deliver(ctx, msg, bytes.NewReader([]byte("Subject: to the list\r\n\r\nx\r\n"))); err != nil || len(got.Rejected) != 0 {
		t.Fatalf("delivery to the list: %+v, %v", got, err)
	}
	if err := n.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := n.State().Messages("c@example.com", "INBOX", 0, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("sender holds %d messages (%v), want the one notice", len(msgs), err)
	}
	rd, err := n.OpenBody(ctx, msgs[0].Hash)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rd)
	rd.Close()
	if err != nil {
		t.Fatal(err)
	}
	dsn := string(b)
	if got := strings.Count(dsn, "Final-Recipient: "); got != MaxFullNamed {
		t.Errorf("notice names %d recipients, want %d", got, MaxFullNamed)
	}
	if got := strings.Count(dsn, "Action: failed\r\nStatus: 5.2.2\r\n"); got != MaxFullNamed {
		t.Errorf("notice has %d failures with 5.2.2, want %d", got, MaxFullNamed)
	}
	for _, want := range []string{"Final-Recipient: rfc822; m000@example.com\r\n", "and 10 more members of <big@example.com>"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("notice lacks %q:\n%s", want, dsn)
		}
	}
	if strings.Contains(dsn, "a@example.com") || strings.Contains(dsn, members[len(members)-1]) {
		t.Errorf("notice names a member that took the message, or one past the bound:\n%s", dsn)
	}
	for addr, want := range map[string]int{"a@example.com": 1, members[0]: 1, members[len(members)-1]: 1} {
		if got, err := n.State().Messages(addr, "INBOX", 0, 0); err != nil || len(got) != want {
			t.Errorf("%s holds %d messages (%v), want %d", addr, len(got), err, want)
		}
	}
}

// The report on full members honours NOTIFY, names a member once however
// many RCPTs reached it, leaves out one that took the message through
// another RCPT, and is empty when the message was kept nowhere. Over
// LMTP (PerRecipient) it names a RCPT's full members only when its
// reply was 250, and refusals at commit not at all (the replies say
// them).
func TestRefusedReportNamesFullMembers(t *testing.T) {
	cmd := &fsm.Deliver{ID: "d1", Hash: "h", Size: 100}
	rejected := map[string]error{"e@example.com": fmt.Errorf("%w: x", ErrUnknownRecipient)}
	failure := []NotifyRcpt{
		{Address: "team@example.com", ORCPT: "rfc822; Team@example.com", Mailboxes: []string{"a@example.com"}, Full: []string{"b@example.com"}},
		{Address: "quiet@example.com", Notify: "NEVER", Mailboxes: []string{"a@example.com"}, Full: []string{"q@example.com"}},
		{Address: "other@example.com", Mailboxes: []string{"e@example.com"}, Full: []string{"b@example.com", "c@example.com", "d@example.com"}},
	}
	msg := Message{From: "s@example.com", Mailboxes: []string{"a@example.com", "d@example.com", "e@example.com"},
		Notify: &DSNRequest{Failure: failure}}
	rep := refusedReport(cmd, msg, DeliveryResult{Rejected: rejected})
	var got []string
	for _, r := range rep.rcpts {
		got = append(got, r.address+" "+r.status+" "+r.orcpt)
	}
	want := []string{"b@example.com 5.2.2 rfc822; Team@example.com", "other@example.com 5.1.1 ", "c@example.com 5.2.2 "}
	if !slices.Equal(got, want) {
		t.Errorf("report names %q, want %q", got, want)
	}
	if r := rep.rcpts[0]; !strings.Contains(r.err, "mailbox full") || !strings.Contains(r.err, "team@example.com") {
		t.Errorf("full member's words: %q", r.err)
	}
	nowhere := DeliveryResult{Rejected: map[string]error{"a@example.com": rejected["e@example.com"], "d@example.com": rejected["e@example.com"], "e@example.com": rejected["e@example.com"]}}
	if rep := refusedReport(cmd, msg, nowhere); len(rep.rcpts) != 0 {
		t.Errorf("message kept nowhere, yet a report on %+v", rep.rcpts)
	}

	msg.Notify.PerRecipient = true
	rep = refusedReport(cmd, msg, DeliveryResult{Rejected: rejected})
	if len(rep.rcpts) != 1 || rep.rcpts[0].address != "b@example.com" {
		t.Errorf("LMTP report %+v, want b alone (other@ was answered with its refusal)", rep.rcpts)
	}
}

// A transaction of many RCPTs, each a list with full members, gives a
// notice whose size does not grow with the RCPTs: MaxFullNamed members
// named and one line counting the others, however many lists left some
// unnamed.
func TestFullMembersNoticeIsBoundedOverManyLists(t *testing.T) {
	cmd := &fsm.Deliver{ID: "d1", Hash: "h", Size: 100}
	for _, lists := range []int{2, 300, 3000} {
		var failure []NotifyRcpt
		for i := range lists {
			failure = append(failure, NotifyRcpt{
				Address:   fmt.Sprintf("list%04d@example.com", i),
				Mailboxes: []string{"a@example.com"},
				Full:      []string{fmt.Sprintf("m%04d@example.com", i), "shared@example.com"},
				FullMore:  2,
			})
		}
		msg := Message{From: "s@example.com", Mailboxes: []string{"a@example.com"}, Notify: &DSNRequest{Failure: failure}}
		rep := refusedReport(cmd, msg, DeliveryResult{})
		named := min(lists+1, MaxFullNamed) // each list's own member and the shared one, once
		if len(rep.rcpts) != named {
			t.Errorf("%d lists: notice names %d recipients, want %d", lists, len(rep.rcpts), named)
		}
		if len(rep.notes) != 1 {
			t.Fatalf("%d lists: notice has %d lines on the members not named, want 1: %q", lists, len(rep.notes), rep.notes[:min(3, len(rep.notes))])
		}
		more := lists + 1 - named + 2*lists
		want := fmt.Sprintf("and %d more members, of %d of the addresses the message was sent to,", more, lists)
		if !strings.HasPrefix(rep.notes[0], want) {
			t.Errorf("%d lists: note %q, want it to start %q", lists, rep.notes[0], want)
		}
	}
	one := Message{From: "s@example.com", Mailboxes: []string{"a@example.com"}, Notify: &DSNRequest{Failure: []NotifyRcpt{
		{Address: "big@example.com", Mailboxes: []string{"a@example.com"}, Full: []string{"b@example.com"}, FullMore: 7},
		{Address: "small@example.com", Mailboxes: []string{"a@example.com"}, Full: []string{"c@example.com"}},
	}}}
	rep := refusedReport(cmd, one, DeliveryResult{})
	if want := []string{"and 7 more members of <big@example.com> whose mailboxes were full, not named here"}; !slices.Equal(rep.notes, want) {
		t.Errorf("one list with members not named: notes %q, want %q", rep.notes, want)
	}
}
