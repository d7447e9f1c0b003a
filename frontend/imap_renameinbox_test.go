package frontend_test

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"

	"powermail/fsm"
)

// A RENAME INBOX of a large INBOX (moved in pieces) that is refused at
// its first piece answers NO and leaves no folder behind: neither the
// one it made for the messages nor the superior name it made for that
// one. The refusal here is real: the mailbox is marked as being removed
// (as `mailbox rm` marks it), which refuses every MOVE into it.
func TestIMAPRenameOfLargeInboxRefusedLeavesNoFolder(t *testing.T) {
	const log2, per = 8, 100
	c, s, user := largeInbox(t, log2, per)
	names := func() []string {
		t.Helper()
		list, err := s.List("", "*", nil).Collect()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range list {
			out = append(out, l.Mailbox)
		}
		return out
	}
	before := names()
	on, off := true, false
	c.Apply(&fsm.MailboxUpdate{Address: user, Removing: &on, Remover: "test"})
	if err := s.Rename("INBOX", "Old/2026", nil).Wait(); err == nil {
		t.Fatal("RENAME INBOX of a mailbox being removed: OK, want NO")
	}
	if after := names(); !slices.Equal(after, before) {
		t.Errorf("after the refused RENAME, LIST has %q, want %q as before", after, before)
	}
	c.Apply(&fsm.MailboxUpdate{Address: user, Removing: &off, Remover: "test"})
	if err := s.Rename("INBOX", "Old/2026", nil).Wait(); err != nil {
		t.Fatalf("RENAME INBOX once the removal gave up: %v", err)
	}
	st, err := s.Status("Old/2026", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != 1<<log2 {
		t.Fatalf("Old/2026: %+v (%v), want %d messages", st, err, 1<<log2)
	}
}
