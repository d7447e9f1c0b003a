package node

import (
	"errors"
	"slices"
	"testing"
	"time"

	"powermail/fsm"
)

// A COPY piece whose commit a leader change hid is proposed again under
// its ID (copyOnce, untilKnown). From command encoding 14 the repeat,
// forwarded from a follower to the leader of a three-node cluster,
// answers the UIDs the first commit gave, so when a later piece fails
// undoCopy expunges that piece's copies from the destination.
func TestCopyPieceRepeatIsUndone(t *testing.T) {
	first, again, left := copyPieceRepeated(t, fsm.NewestEncoding)
	if again.UIDValidity != first.UIDValidity || !slices.Equal(again.Src, first.Src) || !slices.Equal(again.Dst, first.Dst) {
		t.Fatalf("the repeat answered %+v, want the first's %+v", again, first)
	}
	if left != 0 {
		t.Fatalf("the destination keeps %d copies after the undo, want none", left)
	}
}

// Below 14 the repeat answers no UIDs, and its copies stay in the
// destination after the undo, as before (logged as an error).
func TestCopyPieceRepeatIsUndoneGateBelow14(t *testing.T) {
	first, again, left := copyPieceRepeated(t, fsm.EncodingJSON13)
	if again.UIDValidity != 0 || len(again.Dst) != 0 {
		t.Fatalf("at 13 the repeat answered %+v, want no UIDs, as before", again)
	}
	if left != int64(len(first.Dst)) {
		t.Fatalf("at 13 the destination keeps %d copies after the undo, want the %d the repeat could not name", left, len(first.Dst))
	}
}

// copyPieceRepeated proposes one named Copy piece twice through a
// follower of a cluster at encoding enc, undoes the COPY as if the
// repeat's answer were the piece's only one, and returns both answers
// and the messages left in the destination.
func copyPieceRepeated(t *testing.T, enc int) (first, again fsm.CopyResult, left int64) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: enc}
	})
	l := c.leader(5 * time.Second)
	f, ctx := c.followers(l)[0], ctxT(t, time.Minute)
	a := "a@example.com"
	big := bigFolder(t, l, "Src", 3)
	if err := l.CreateFolder(ctx, a, "Dst", ""); err != nil {
		t.Fatal(err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	to, err := f.Folder(ctx, a, "Dst")
	if err != nil {
		t.Fatal(err)
	}
	check := &fsm.FolderCheck{ID: big.Folder.ID, UIDValidity: big.Folder.UIDValidity}
	cmd := &fsm.Copy{Mailbox: a, From: "Src", To: "Dst", UIDs: wholeFolder, Expect: check, ID: "copy-" + deliveryID()}
	for _, out := range []*fsm.CopyResult{&first, &again} {
		v, err := f.Apply(ctx, cmd)
		if err == nil {
			err = convert(v, out)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(first.Dst) != len(big.Messages) {
		t.Fatalf("first commit copied %d of %d", len(first.Dst), len(big.Messages))
	}
	f.undoCopy(ctx, a, "Dst", to, []fsm.CopyResult{again}, errors.New("a later piece failed"))
	if err := l.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	dst, err := l.State().Folder(a, "Dst")
	if err != nil {
		t.Fatal(err)
	}
	return first, again, dst.Messages
}
