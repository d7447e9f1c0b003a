package main

import (
	"regexp"
	"strings"
	"testing"

	"powermail/node"
)

// TestMailboxLsForwardKeepingACopy: mailbox ls says MAIL forwarded for a
// mailbox whose own address has a forward that takes its mail. A forward
// made with --keep-copy leaves a copy in the mailbox, which then gets
// all its mail still: "forwarded" alone sent an administrator looking
// for mail that is there.
func TestMailboxLsForwardKeepingACopy(t *testing.T) {
	p := startSolo(t)
	for _, args := range [][]string{
		{"mailbox", "add", "ann@example.com", "--no-password"},
		{"mailbox", "add", "bob@example.com", "--no-password"},
		{"mailbox", "add", "cat@example.com", "--no-password"},
		{"forward", "add", "ann@example.com", "--to", "cat@example.com"},
		{"forward", "add", "bob@example.com", "--to", "cat@example.com", "--keep-copy"},
	} {
		mustCLI(t, append(args, "--addr", p.admin)...)
	}
	out := mustCLI(t, "mailbox", "ls", "--addr", p.admin)
	for addr, want := range map[string]string{
		"ann@example.com": `forwarded`,
		"bob@example.com": `accepted, forwarded a copy`,
		"cat@example.com": `accepted`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(addr) + ` .*  ` + want + `$`).MatchString(out) {
			t.Errorf("mailbox ls: %s's MAIL is not %q:\n%s", addr, want, out)
		}
	}
	js := mustCLI(t, "mailbox", "ls", "--json", "--addr", p.admin)
	if !strings.Contains(js, `"forward_keeps_copy": true`) {
		t.Errorf("mailbox ls --json lacks forward_keeps_copy:\n%s", js)
	}
}

// TestMailboxLsForwardWhoseTargetsAreGone: a forward whose targets were
// all removed reaches nobody, and delivery skips it (fsm resolution):
// without --keep-copy the address is unknown and its mail refused, with
// it the mailbox alone gets the mail. ls said "forwarded" for the first,
// where RCPT answers 550, and "forwarded a copy" for the second. A
// forward with one target left still forwards.
func TestMailboxLsForwardWhoseTargetsAreGone(t *testing.T) {
	p := startSoloMail(t, "keep@example.com")
	for _, args := range [][]string{
		{"mailbox", "add", "ann@example.com", "--no-password"},
		{"mailbox", "add", "bob@example.com", "--no-password"},
		{"mailbox", "add", "cat@example.com", "--no-password"},
		{"mailbox", "add", "dan@example.com", "--no-password"},
		{"forward", "add", "ann@example.com", "--to", "cat@example.com"},
		{"forward", "add", "bob@example.com", "--to", "cat@example.com", "--keep-copy"},
		{"forward", "add", "dan@example.com", "--to", "cat@example.com", "--to", "keep@example.com"},
		{"mailbox", "rm", "cat@example.com"},
	} {
		mustCLI(t, append(args, "--addr", p.admin)...)
	}
	out := mustCLI(t, "mailbox", "ls", "--addr", p.admin)
	for addr, want := range map[string]string{
		"ann@example.com": `refused: its forward's targets are gone`,
		"bob@example.com": `accepted, its forward's targets are gone`,
		"dan@example.com": `forwarded`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(addr) + ` .*  ` + regexp.QuoteMeta(want) + `$`).MatchString(out) {
			t.Errorf("mailbox ls: %s's MAIL is not %q:\n%s", addr, want, out)
		}
	}
	// What delivery does with each.
	for addr, want := range map[string]int{"ann@example.com": 550, "bob@example.com": 250, "dan@example.com": 250} {
		if code, msg := send(t, p.smtp, "s@elsewhere.net", []string{addr}, "Subject: x\r\n\r\nx\r\n"); code != want {
			t.Errorf("mail to %s: %d %s, want %d", addr, code, msg, want)
		}
	}
	js := mustCLI(t, "mailbox", "ls", "--json", "--addr", p.admin)
	if strings.Count(js, `"forward_targets_gone": true`) != 2 {
		t.Errorf("mailbox ls --json: want forward_targets_gone for ann and bob:\n%s", js)
	}
}

// TestMailboxMailColumn: what ls says of a mailbox's mail is what
// delivery does (fsm resolution): a forward without keep_copy is
// followed before the mailbox is reached, so a mailbox that mailbox rm
// is emptying, with such a forward, has its mail forwarded, not refused.
// With keep_copy the mailbox is reached, and its removal refuses the
// mail.
func TestMailboxMailColumn(t *testing.T) {
	for _, tc := range []struct {
		m    node.MailboxView
		want string
	}{
		{node.MailboxView{}, "accepted"},
		{node.MailboxView{Removing: true}, "refused: being removed"},
		{node.MailboxView{HasForward: true}, "forwarded"},
		{node.MailboxView{HasForward: true, ForwardKeepsCopy: true}, "accepted, forwarded a copy"},
		{node.MailboxView{Removing: true, HasForward: true}, "forwarded"},
		{node.MailboxView{Removing: true, HasForward: true, ForwardKeepsCopy: true}, "refused: being removed"},
		{node.MailboxView{HasForward: true, ForwardTargetsGone: true}, "refused: its forward's targets are gone"},
		{node.MailboxView{Removing: true, HasForward: true, ForwardTargetsGone: true}, "refused: its forward's targets are gone"},
		{node.MailboxView{HasForward: true, ForwardKeepsCopy: true, ForwardTargetsGone: true}, "accepted, its forward's targets are gone"},
		{node.MailboxView{Removing: true, HasForward: true, ForwardKeepsCopy: true, ForwardTargetsGone: true}, "refused: being removed"},
		// RCPT answers 452 4.2.2 for a mailbox at or past its quota (as
		// for one that keeps a copy beside its forward), until mail is
		// deleted or the quota raised; a forward that takes the mail
		// does not reach it.
		{node.MailboxView{QuotaBytes: 10, UsedBytes: 10}, "refused: over quota"},
		{node.MailboxView{QuotaBytes: 10, UsedBytes: 9}, "accepted"},
		{node.MailboxView{UsedBytes: 99}, "accepted"},
		{node.MailboxView{QuotaBytes: 10, UsedBytes: 11, HasForward: true}, "forwarded"},
		{node.MailboxView{QuotaBytes: 10, UsedBytes: 11, HasForward: true, ForwardKeepsCopy: true}, "refused: over quota"},
		{node.MailboxView{QuotaBytes: 10, UsedBytes: 11, Removing: true}, "refused: being removed"},
	} {
		if got := mailColumn(tc.m); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.m, got, tc.want)
		}
	}
}
