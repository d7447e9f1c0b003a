package frontend_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
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

// From command encoding 16 the undo of the superior name a failed
// RENAME INBOX made ("Old" for "Old/2026") deletes it only as it found
// it, in one entry: a message another session APPENDs to it between
// the undo's read of the folders and its delete keeps the folder, with
// the message.
func TestIMAPRenameInboxUndoKeepsAMessageAppendedToASuperior(t *testing.T) {
	if n := superiorUndoRaced(t, fsm.NewestEncoding, appendToOld); n != 1 {
		t.Fatalf("Old holds %d messages after the undo (-1: deleted), want the 1 appended meanwhile", n)
	}
}

// Likewise a folder another session creates below the superior name
// meanwhile keeps it, as one there at the undo's read does.
func TestIMAPRenameInboxUndoKeepsASuperiorGivenAChild(t *testing.T) {
	kid := func(ctx context.Context, n *node.Node, user string) error {
		return n.CreateFolder(ctx, user, "Old/kid", "")
	}
	if n := superiorUndoRaced(t, fsm.NewestEncoding, kid); n != 0 {
		t.Fatalf("Old holds %d messages after the undo (-1: deleted), want it kept, empty, above the child created meanwhile", n)
	}
}

// appendToOld APPENDs a message to folder Old of user through n.
func appendToOld(ctx context.Context, n *node.Node, user string) error {
	_, err := n.Append(ctx, user, "Old", nil, time.Time{}, strings.NewReader("Subject: meanwhile\r\n\r\nx\r\n"))
	return err
}

// Below 16 the read and the delete stay two steps, as before: the
// message appended between them is deleted with the folder
// (frontend/DESIGN.md).
func TestIMAPRenameInboxUndoOfASuperiorGateBelow16(t *testing.T) {
	if n := superiorUndoRaced(t, fsm.EncodingJSON15, appendToOld); n != -1 {
		t.Fatalf("at 15 Old holds %d messages after the undo, want it deleted with the one appended meanwhile, as before", n)
	}
}

// undoRaceStore is a node whose first Folders read after a failed
// RenameFolder (the undo of the superiors' read) runs between before it
// answers, as another session's commit landing there would.
type undoRaceStore struct {
	*node.Node
	armed   atomic.Bool
	between func()
}

func (u *undoRaceStore) RenameFolder(ctx context.Context, addr, from, to string) error {
	err := u.Node.RenameFolder(ctx, addr, from, to)
	u.armed.Store(err != nil)
	return err
}

func (u *undoRaceStore) Folders(ctx context.Context, addr string) ([]node.Folder, error) {
	fs, err := u.Node.Folders(ctx, addr)
	if u.armed.CompareAndSwap(true, false) {
		u.between()
	}
	return fs, err
}

// superiorUndoRaced has RENAME INBOX Old/2026 of a large INBOX, in a
// cluster at command encoding enc, refused at its first piece (the
// mailbox marked as being removed), APPENDs a message to Old, the
// superior name it made, or runs another meanwhile, between the undo's
// read and its delete (the mark cleared first), and returns how many messages Old then holds on
// the node that bootstrapped the cluster, or -1 when Old is gone.
func superiorUndoRaced(t *testing.T, enc int, meanwhile func(context.Context, *node.Node, string) error) int64 {
	const log2, per = 8, 100
	store := &undoRaceStore{}
	c, s, user := largeInboxWith(t, log2, per, enc, func(n *node.Node) frontend.MailStore {
		store.Node = n
		return store
	})
	on, off := true, false
	ran := false
	store.between = func() {
		ran = true
		c.Apply(&fsm.MailboxUpdate{Address: user, Removing: &off, Remover: "test"})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := meanwhile(ctx, c.Nodes[0], user); err != nil {
			t.Errorf("another session's command on Old: %v", err)
		}
	}
	c.Apply(&fsm.MailboxUpdate{Address: user, Removing: &on, Remover: "test"})
	if err := s.Rename("INBOX", "Old/2026", nil).Wait(); err == nil {
		t.Fatal("RENAME INBOX of a mailbox being removed: OK, want NO")
	}
	if !ran {
		t.Fatal("the undo of the superiors did not read the folders")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[0].Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := c.Nodes[0].State().Folder(user, "Old")
	if errors.Is(err, fsm.ErrNoFolder) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return f.Messages
}
