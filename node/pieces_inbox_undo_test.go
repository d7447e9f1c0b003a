package node

import (
	"errors"
	"testing"
	"time"

	"powermail/fsm"
)

// A RENAME INBOX in pieces whose first piece is refused moved nothing,
// and takes back the folder it made for them: the client told NO finds
// no new folder. Here the mailbox is being removed (`mailbox rm` under
// way, its mark set as the removal sets it), which refuses every MOVE
// into it but not the folder's creation. Once the removal has given up
// (mark cleared), the same rename works. A folder that had the name
// before is never taken: the create is refused and nothing is deleted.
func TestLargeInboxRenameRefusedAtFirstPieceDropsItsFolder(t *testing.T) {
	const log2, per = 11, 1000
	ns := pieceCluster(t, per)
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	before := bigFolder(t, ns[0], "INBOX", log2)
	if err := ns[0].CreateFolder(ctx, a, "Taken", ""); err != nil {
		t.Fatal(err)
	}
	on, off := true, false
	mustApply(t, ns[0], &fsm.MailboxUpdate{Address: a, Removing: &on, Remover: "test"})
	if err := ns[1].RenameFolder(ctx, a, "INBOX", "Old"); !errors.Is(err, ErrMailboxRemoving) {
		t.Fatalf("rename INBOX while the mailbox is being removed: %v, want ErrMailboxRemoving", err)
	}
	if err := ns[1].RenameFolder(ctx, a, "INBOX", "Taken"); !errors.Is(err, ErrFolderExists) {
		t.Fatalf("rename INBOX to an existing folder: %v, want ErrFolderExists", err)
	}
	for _, node := range ns {
		if err := node.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if f, err := node.State().Folder(a, "Old"); !errors.Is(err, fsm.ErrNotFound) && !errors.Is(err, fsm.ErrNoFolder) {
			t.Errorf("%s: the failed rename left folder Old: %+v (%v)", node.ID(), f, err)
		}
		if _, err := node.State().Folder(a, "Taken"); err != nil {
			t.Errorf("%s: folder Taken: %v", node.ID(), err)
		}
		in, err := node.View(ctx, a, "INBOX")
		if err != nil || len(in.Messages) != len(before.Messages) {
			t.Errorf("%s: INBOX holds %d messages, want %d (%v)", node.ID(), len(in.Messages), len(before.Messages), err)
		}
	}
	mustApply(t, ns[0], &fsm.MailboxUpdate{Address: a, Removing: &off, Remover: "test"})
	if err := ns[1].RenameFolder(ctx, a, "INBOX", "Old"); err != nil {
		t.Fatalf("rename INBOX after the removal gave up: %v", err)
	}
	if old, err := ns[1].View(ctx, a, "Old"); err != nil || len(old.Messages) != len(before.Messages) {
		t.Fatalf("Old holds %d messages, want %d (%v)", len(old.Messages), len(before.Messages), err)
	}
}
