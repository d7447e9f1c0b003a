package node

import (
	"errors"
	"testing"
	"time"
)

// RENAME INBOX of more messages than one entry may act on moves them in
// pieces, and leaves what the single entry leaves: every message in the
// new folder with its flags, INBOX empty with its UIDVALIDITY and
// UIDNEXT, the mailbox's totals and the body's references unchanged, on
// every node. A name already taken is refused before anything moves.
func TestLargeInboxRenameIsSplit(t *testing.T) {
	const log2, per = 12, 1000
	ns := pieceCluster(t, per)
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	inbox := bigFolder(t, ns[0], "INBOX", log2)
	seen := viewUIDs(inbox)[:100]
	if _, err := ns[0].StoreFlags(ctx, a, "INBOX", seen, FlagsAdd, []string{`\Seen`}, checkOf(inbox)); err != nil {
		t.Fatal(err)
	}
	if err := ns[0].CreateFolder(ctx, a, "Taken", ""); err != nil {
		t.Fatal(err)
	}
	if err := ns[1].RenameFolder(ctx, a, "INBOX", "inbox/"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("rename INBOX to itself: %v, want ErrInvalidArgument", err)
	}
	if err := ns[1].RenameFolder(ctx, a, "INBOX", "Taken"); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("rename INBOX to an existing folder: %v, want ErrFolderExists", err)
	}
	if v, err := ns[1].View(ctx, a, "Taken"); err != nil || len(v.Messages) != 0 {
		t.Fatalf("the refused rename moved %d messages (%v)", len(v.Messages), err)
	}
	before, err := ns[1].View(ctx, a, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	n := entriesDuring(t, ns[1], func() error { return ns[1].RenameFolder(ctx, a, "inbox", "Old") })
	if n < 1<<log2/per {
		t.Errorf("RENAME INBOX of %d messages took %d entries", len(before.Messages), n)
	}
	for _, node := range ns {
		if err := node.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		in, err := node.View(ctx, a, "INBOX")
		if err != nil || len(in.Messages) != 0 || in.Folder.Messages != 0 ||
			in.Folder.UIDValidity != before.Folder.UIDValidity || in.Folder.UIDNext != before.Folder.UIDNext {
			t.Errorf("%s: INBOX after the rename: %+v (%v)", node.ID(), in.Folder, err)
		}
		old, err := node.View(ctx, a, "Old")
		if err != nil || len(old.Messages) != len(before.Messages) || old.Folder.Unseen != before.Folder.Unseen {
			t.Errorf("%s: Old holds %d messages, %d unseen, want %d, %d (%v)", node.ID(),
				len(old.Messages), old.Folder.Unseen, len(before.Messages), before.Folder.Unseen, err)
		}
		mb, err := node.State().Mailbox(a)
		if err != nil || mb.Messages != int64(len(before.Messages)) {
			t.Errorf("%s: mailbox holds %d messages (%v)", node.ID(), mb.Messages, err)
		}
		if b, err := node.State().Body(before.Messages[0].Hash); err != nil || b.Refs != int64(len(before.Messages)) {
			t.Errorf("%s: body has %d references, want %d (%v)", node.ID(), b.Refs, len(before.Messages), err)
		}
	}
}

// A new name with a trailing separator names the folder without it (RFC
// 9051 §6.3.4, as the single entry reads it): the pieces move INBOX's
// messages into the folder they made.
func TestLargeInboxRenameTrailingSeparator(t *testing.T) {
	const log2, per = 11, 1000
	ns := pieceCluster(t, per)
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	before := bigFolder(t, ns[0], "INBOX", log2)
	if err := ns[0].RenameFolder(ctx, a, "INBOX", "Old/"); err != nil {
		t.Fatalf("rename INBOX to Old/: %v", err)
	}
	old, err := ns[0].View(ctx, a, "Old")
	if err != nil || len(old.Messages) != len(before.Messages) {
		t.Fatalf("Old holds %d messages, want %d (%v)", len(old.Messages), len(before.Messages), err)
	}
	if in, err := ns[0].View(ctx, a, "INBOX"); err != nil || len(in.Messages) != 0 {
		t.Fatalf("INBOX keeps %d messages (%v)", len(in.Messages), err)
	}
}
