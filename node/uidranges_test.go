package node

import (
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// fullInbox fills a@example.com's INBOX with 2^15 messages (one body,
// doubled by COPY) and returns their UIDs and the folder check.
func fullInbox(t *testing.T, n *Node) ([]uint32, FolderCheck) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	if _, err := n.Append(ctx, a, "INBOX", nil, time.Time{}, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Fatal(err)
	}
	var v FolderView
	for i := 0; ; i++ {
		var err error
		if v, err = n.View(ctx, a, "INBOX"); err != nil {
			t.Fatal(err)
		}
		if i == 15 {
			break
		}
		if _, err := n.Copy(ctx, a, "INBOX", "INBOX", viewUIDs(v), false); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.Messages) != 1<<15 {
		t.Fatalf("view: %d messages", len(v.Messages))
	}
	return viewUIDs(v), FolderCheck{ID: v.Folder.ID, UIDValidity: v.Folder.UIDValidity}
}

func viewUIDs(v FolderView) []uint32 {
	uids := make([]uint32, len(v.Messages))
	for i, m := range v.Messages {
		uids[i] = m.UID
	}
	return uids
}

// gappyInbox is fullInbox with every odd UID expunged (a few thousand
// at a time, as a client within the limit would), so that the 2^14
// messages left are all separated by gaps: the folder a mailbox becomes
// when mail was deleted here and there. It returns the UIDs left.
func gappyInbox(t *testing.T, n *Node) ([]uint32, FolderCheck) {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	all, check := fullInbox(t, n)
	odd := slices.DeleteFunc(slices.Clone(all), func(u uint32) bool { return u%2 == 0 })
	for chunk := range slices.Chunk(odd, fsm.MaxUIDRanges/2) {
		if _, err := n.Expunge(ctx, "a@example.com", "INBOX", chunk, false, check); err != nil {
			t.Fatal(err)
		}
	}
	return slices.DeleteFunc(all, func(u uint32) bool { return u%2 == 1 }), check
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

// A client that names more separate runs than one command carries, with
// messages it keeps between them (POP3 DELE of every other message of a
// large maildrop, then QUIT), still has them expunged: by more than one
// command, which RFC 1939 §6 allows.
func TestAccessExpungeOfManyRunsIsSplit(t *testing.T) {
	_, ns := accessCluster(t)
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	all, check := fullInbox(t, ns[0])
	odd := slices.DeleteFunc(slices.Clone(all), func(u uint32) bool { return u%2 == 0 })
	if len(odd) <= fsm.MaxUIDRanges {
		t.Fatalf("only %d runs", len(odd))
	}
	removed, err := ns[0].Expunge(ctx, a, "INBOX", odd, false, check)
	if err != nil {
		t.Fatalf("expunge of %d separate messages: %v", len(odd), err)
	}
	if !slices.Equal(removed, odd) {
		t.Errorf("removed %d messages, want %d", len(removed), len(odd))
	}
	v, err := ns[0].View(ctx, a, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.DeleteFunc(all, func(u uint32) bool { return u%2 == 1 }); !slices.Equal(viewUIDs(v), want) {
		t.Errorf("%d messages left, want the %d even ones", len(v.Messages), len(want))
	}
}
