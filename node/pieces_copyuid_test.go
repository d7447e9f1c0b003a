package node

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// A MOVE in several pieces whose destination is deleted and made again
// between two pieces put its first messages in one folder and the rest
// in another, of a different UIDVALIDITY: a COPYUID naming the last
// one's UIDVALIDITY would pair source messages with destination UIDs of
// the wrong folder (RFC 4315 §3: COPYUID's UIDs are in the destination
// named by that UIDVALIDITY). The MOVE must then answer without one.
// The replacement races the MOVE, so a run where it landed after the
// whole MOVE is repeated.
func TestMoveToReplacedDestinationOmitsCOPYUID(t *testing.T) {
	const log2, per = 12, 250
	l, f, ctx := pieceRaceCluster(t, per)
	a := "a@example.com"
	for attempt := range pieceRaceAttempts {
		src, dst, big := raceFolders(t, ctx, l, f, attempt, log2, "Moved")
		moved, err := copyRacing(t, ctx, f, a, src, dst, viewUIDs(big), true, big, func(moving <-chan struct{}) error {
			return replaceWhenFirstPieceLands(ctx, l, a, dst, moving)
		})
		if err != nil {
			t.Logf("attempt %d: a piece met the destination missing: %v", attempt, err)
			continue
		}
		after, err := f.View(ctx, a, dst)
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Messages) == 0 || len(after.Messages) == len(big.Messages) {
			t.Logf("attempt %d: the replacement did not land between pieces (%d in the new folder)", attempt, len(after.Messages))
			continue
		}
		t.Logf("attempt %d: %d of %d moved messages in the new folder; COPYUID of %d UIDs", attempt, len(after.Messages), len(big.Messages), len(moved.SrcUIDs))
		if len(moved.SrcUIDs) == 0 {
			return // no COPYUID: right
		}
		if moved.UIDValidity != after.Folder.UIDValidity {
			t.Fatalf("COPYUID names UIDVALIDITY %d, which no folder %s has (now %d)", moved.UIDValidity, dst, after.Folder.UIDValidity)
		}
		// Each destination UID names one message of that folder, once.
		have := viewUIDs(after)
		uniq := slices.Compact(slices.Sorted(slices.Values(moved.DstUIDs)))
		if len(uniq) != len(moved.DstUIDs) || len(moved.DstUIDs) > len(have) {
			t.Fatalf("COPYUID pairs %d source messages with %d distinct destination UIDs under UIDVALIDITY %d, whose folder holds %d of them",
				len(moved.SrcUIDs), len(uniq), moved.UIDValidity, len(have))
		}
		return
	}
	t.Skipf("the destination's replacement never landed between two pieces in %d attempts: this run could not set up the race it checks", pieceRaceAttempts)
}

// A MOVE piece whose messages were all expunged meanwhile moves nothing
// and says so with its destination's UIDVALIDITY; unlike a piece
// repeated after a leader change, its (empty) UIDs are known, so the
// MOVE still names every message it moved in COPYUID (RFC 6851 §4.3).
func TestMovePieceOfExpungedMessagesKeepsCOPYUID(t *testing.T) {
	const log2, per = 12, 250
	l, f, ctx := pieceRaceCluster(t, per)
	a := "a@example.com"
	for attempt := range pieceRaceAttempts {
		src, dst, big := raceFolders(t, ctx, l, f, attempt, log2, "Moved")
		all := viewUIDs(big)
		top := all[len(all)-per/2:] // within the last piece
		moved, err := copyRacing(t, ctx, f, a, src, dst, all, true, big, func(moving <-chan struct{}) error {
			return expungeWhenFirstPieceLands(ctx, l, a, src, dst, top, checkOf(big), moving)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(moved.SrcUIDs) == len(all) {
			t.Logf("attempt %d: the expunge came after the MOVE", attempt)
			continue
		}
		if want := len(all) - len(top); len(moved.SrcUIDs) != want || len(moved.DstUIDs) != want {
			t.Fatalf("MOVE of %d messages, %d expunged meanwhile, answered %d source and %d destination UIDs", len(all), len(top), len(moved.SrcUIDs), len(moved.DstUIDs))
		}
		return
	}
	t.Skipf("the expunge never came before the last piece in %d attempts: this run could not set up the race it checks", pieceRaceAttempts)
}

// firstPieceLanded waits until the leader's folder dst of a holds a
// message (a MOVE's first piece has landed), or reports false once moving
// is closed (the MOVE returned, perhaps without moving anything), so a
// racing goroutine never outwaits the test.
func firstPieceLanded(l *Node, a, dst string, moving <-chan struct{}) bool {
	for {
		if f, err := l.State().Folder(a, dst); err == nil && f.Messages > 0 {
			return true
		}
		select {
		case <-moving:
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

// copyRacing runs f.Copy (a MOVE if move) of uids of a's folder src,
// which big viewed, into dst while race runs beside it with a channel
// closed once the COPY returned, and fails the test if race failed.
func copyRacing(t *testing.T, ctx context.Context, f *Node, a, src, dst string, uids []uint32, move bool, big FolderView, race func(running <-chan struct{}) error) (CopyResult, error) {
	t.Helper()
	raced, running := make(chan error, 1), make(chan struct{})
	go func() { raced <- race(running) }()
	res, err := f.Copy(ctx, a, src, dst, uids, move, checkOf(big))
	close(running)
	if rerr := <-raced; rerr != nil {
		t.Fatal(rerr)
	}
	return res, err
}

// raceFolders makes a race test's folders for one attempt on the leader
// l: Big<attempt> of 1<<log2 messages of a@example.com (see bigFolder)
// and an empty <dstPrefix><attempt>, and waits until the follower f has
// applied both.
func raceFolders(t *testing.T, ctx context.Context, l, f *Node, attempt, log2 int, dstPrefix string) (src, dst string, big FolderView) {
	t.Helper()
	src, dst = fmt.Sprintf("Big%d", attempt), fmt.Sprintf("%s%d", dstPrefix, attempt)
	big = bigFolder(t, l, src, log2)
	if err := l.CreateFolder(ctx, "a@example.com", dst, ""); err != nil {
		t.Fatal(err)
	}
	if err := f.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	return src, dst, big
}

// expungeWhenFirstPieceLands expunges uids of folder src of a on the
// leader l once a piece of an operation into dst has landed (see
// firstPieceLanded); it does nothing if the operation ended first.
func expungeWhenFirstPieceLands(ctx context.Context, l *Node, a, src, dst string, uids []uint32, check FolderCheck, running <-chan struct{}) error {
	if !firstPieceLanded(l, a, dst, running) {
		return nil
	}
	_, err := l.Expunge(ctx, a, src, uids, false, check)
	return err
}

// pieceRaceAttempts is how many times a test that races another
// session's command against a large operation's pieces tries before it
// gives up: the race is won when the other command lands between two
// pieces, which in every run seen happened within the first tries; a
// run where it never does proves nothing and is skipped, not passed.
const pieceRaceAttempts = 6

// pieceRaceCluster is a three-node cluster whose large operations go in
// pieces of per messages, its leader, the follower that runs the
// operation, and a context for the whole test.
func pieceRaceCluster(t *testing.T, per int) (l, f *Node, ctx context.Context) {
	t.Helper()
	c := deliveryClusterWith(t, func(cfg *Config) { cfg.EntryMessages = per })
	l = c.leader(5 * time.Second)
	return l, c.followers(l)[0], ctxT(t, 4*time.Minute)
}
