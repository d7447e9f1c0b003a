package node

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// The sessions that poll one folder after one change share one read of
// it: each used to miss the cache at once and bring the old view up to
// date by itself, a copy of the whole message list and a read of the
// state per session.
func TestViewAfterAChangeIsReadOnceForAllSessions(t *testing.T) {
	const sessions, log2 = 16, 16
	c := deliveryCluster(t)
	l := c.leader(5 * time.Second)
	const user, folder = "a@example.com", "Big"
	ctx := ctxT(t, time.Minute)
	bigFolder(t, l, folder, log2)
	if _, err := l.StoreFlags(ctx, user, folder, []uint32{7}, FlagsAdd, []string{`\Seen`}); err != nil {
		t.Fatal(err)
	}
	before := l.views.reads.Load()
	start := make(chan struct{})
	views := make([]FolderView, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Go(func() {
			<-start
			v, err := l.View(ctx, user, folder)
			if err != nil {
				t.Error(err)
			}
			views[i] = v
		})
	}
	close(start)
	wg.Wait()
	if n := l.views.reads.Load() - before; n != 1 {
		t.Errorf("%d sessions polling after one change read the folder %d times, want once", sessions, n)
	}
	for i, v := range views {
		if len(v.Messages) != 1<<log2 || !slices.Contains(v.Messages[6].Flags, `\Seen`) {
			t.Fatalf("session %d: %d messages, UID %d flags %q", i, len(v.Messages), v.Messages[6].UID, v.Messages[6].Flags)
		}
	}
}

// A session that joins another's read of a folder takes that view only
// if it is of the folder it read itself. A mailbox removed and added
// again numbers its folders from 1 again, and its default folders start
// at ModSeq 0, so the ID and ModSeq of the old INBOX passed for a newer
// view of the new one: the session saw the removed mailbox's messages.
func TestSharedViewIsOfTheSameFolder(t *testing.T) {
	c := deliveryCluster(t)
	l := c.leader(5 * time.Second)
	const user = "b@example.com"
	ctx := ctxT(t, time.Minute)
	if _, err := l.Append(ctx, user, "INBOX", nil, time.Now(), strings.NewReader("Subject: old\r\n\r\nold\r\n")); err != nil {
		t.Fatal(err)
	}
	// A session's read of the old INBOX, under way while the mailbox is
	// removed and added again.
	a, err := fsm.ParseAddress(user)
	if err != nil {
		t.Fatal(err)
	}
	key := a.Key() + "\x00INBOX"
	fl, lead := l.views.join(key)
	if !lead {
		t.Fatal("a read of INBOX is under way already")
	}
	old, err := l.readView(key, user, "INBOX")
	if err != nil || len(old.Messages) != 1 {
		t.Fatalf("old INBOX: %d messages, %v", len(old.Messages), err)
	}
	mustApply(t, l, &fsm.MailboxRemove{Address: user})
	mustApply(t, l, addMailbox(user))

	got := make(chan FolderView, 1)
	go func() {
		v, err := l.View(ctx, user, "INBOX")
		if err != nil {
			t.Error(err)
		}
		got <- v
	}()
	time.Sleep(300 * time.Millisecond) // it joins the read under way
	fl.folder, fl.msgs = old.Folder, old.Messages
	l.views.land(key, fl)
	v := <-got
	if len(v.Messages) != 0 || v.Folder.UIDValidity == old.Folder.UIDValidity {
		t.Fatalf("the new INBOX read as %d messages at UIDVALIDITY %d, the removed one's %d",
			len(v.Messages), v.Folder.UIDValidity, old.Folder.UIDValidity)
	}
}
