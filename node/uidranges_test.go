package node

import (
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// gappyInbox fills a@example.com's INBOX with 2^15 messages (one body,
// doubled by COPY) and expunges every odd UID, so that the 2^14 left are
// all separated by gaps: the folder a mailbox becomes when mail was
// deleted here and there. It returns the UIDs left and the folder check.
func gappyInbox(t *testing.T, n *Node) ([]uint32, FolderCheck) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	if _, err := n.Append(ctx, a, "INBOX", nil, time.Time{}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	for range 15 {
		v, err := n.View(ctx, a, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		uids := make([]uint32, len(v.Messages))
		for i, m := range v.Messages {
			uids[i] = m.UID
		}
		if _, err := n.Copy(ctx, a, "INBOX", "INBOX", uids, false); err != nil {
			t.Fatal(err)
		}
	}
	v, err := n.View(ctx, a, "INBOX")
	if err != nil || len(v.Messages) != 1<<15 {
		t.Fatalf("view: %d messages, %v", len(v.Messages), err)
	}
	var odd, even []uint32
	for _, m := range v.Messages {
		if m.UID%2 == 1 {
			odd = append(odd, m.UID)
		} else {
			even = append(even, m.UID)
		}
	}
	// A client deletes them a few at a time, each within the limit.
	for chunk := range slices.Chunk(odd, fsm.MaxUIDRanges/2) {
		if _, err := n.Expunge(ctx, a, "INBOX", chunk, false); err != nil {
			t.Fatal(err)
		}
	}
	return even, FolderCheck{ID: v.Folder.ID, UIDValidity: v.Folder.UIDValidity}
}

// A session that acts on every message of a folder whose UIDs have more
// than fsm.MaxUIDRanges gaps (POP3 DELE of each, then QUIT; IMAP STORE
// 1:* or MOVE 1:*) names more separate UID runs than one command may
// carry. The gaps hold no message, so the command means the same with
// them closed, and must not be refused: a refused POP3 QUIT is retried,
// and refused again, for ever, and the client downloads the same mail
// each time.
func TestAccessManyGapsFitOneCommand(t *testing.T) {
	_, ns := accessCluster(t)
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	even, check := gappyInbox(t, ns[1])
	if len(even) <= fsm.MaxUIDRanges {
		t.Fatalf("only %d messages left", len(even))
	}

	// All but one: the gaps around the one left out stay open.
	keep := even[len(even)/2]
	most := slices.DeleteFunc(slices.Clone(even), func(u uint32) bool { return u == keep })
	changed, err := ns[1].StoreFlags(ctx, a, "INBOX", most, FlagsAdd, []string{`\Seen`}, check)
	if err != nil {
		t.Fatalf("store on %d messages with gaps: %v", len(most), err)
	}
	if len(changed) != len(most) {
		t.Errorf("store changed %d messages, want %d", len(changed), len(most))
	}
	v, err := ns[1].View(ctx, a, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range v.Messages {
		if seen := slices.Contains(m.Flags, `\Seen`); seen != (m.UID != keep) {
			t.Fatalf("UID %d: flags %v (only %d was left out)", m.UID, m.Flags, keep)
		}
	}

	cp, err := ns[2].Copy(ctx, a, "INBOX", "Trash", most, false, check)
	if err != nil {
		t.Fatalf("copy of %d messages with gaps: %v", len(most), err)
	}
	if !slices.Equal(cp.SrcUIDs, most) {
		t.Errorf("copy took %d messages, want %d", len(cp.SrcUIDs), len(most))
	}

	// POP3 QUIT after DELE of every message.
	removed, err := ns[1].Expunge(ctx, a, "INBOX", even, false, check)
	if err != nil {
		t.Fatalf("expunge of %d messages with gaps: %v", len(even), err)
	}
	if !slices.Equal(removed, even) {
		t.Errorf("expunge removed %d messages, want %d", len(removed), len(even))
	}
}
