package node

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// pieceCluster is accessCluster with Config.EntryMessages set.
func pieceCluster(t *testing.T, entryMessages int) []*Node {
	c := deliveryClusterWith(t, func(cfg *Config) { cfg.EntryMessages = entryMessages })
	return []*Node{c.nodes["n1"], c.nodes["n2"], c.nodes["n3"]}
}

// bigFolder makes folder in a@example.com (INBOX is there already) and fills it with 2^log2
// messages of one body (appended once, then doubled by COPY) and
// returns its view.
func bigFolder(t *testing.T, n *Node, folder string, log2 int) FolderView {
	t.Helper()
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	// A leader change on a loaded machine can fail the create or the
	// append with their outcome unknown (ErrUnavailable); each is made
	// again only if it did not take, as a client would look and retry.
	if folder != "INBOX" {
		again(t, "create "+folder, func(retry bool) error {
			err := n.CreateFolder(ctx, a, folder, "")
			if retry && errors.Is(err, ErrFolderExists) {
				return nil
			}
			return err
		})
	}
	again(t, "append to "+folder, func(retry bool) error {
		if retry {
			if v, err := n.View(ctx, a, folder); err == nil && len(v.Messages) > 0 {
				return nil
			}
		}
		_, err := n.Append(ctx, a, folder, nil, time.Time{}, strings.NewReader("Subject: x\r\n\r\nx\r\n"))
		return err
	})
	for i := 0; ; i++ {
		v, err := n.View(ctx, a, folder)
		if err != nil {
			t.Fatal(err)
		}
		if i == log2 {
			return v
		}
		if _, err := n.Copy(ctx, a, folder, folder, viewUIDs(v), false); err != nil {
			t.Fatal(err)
		}
	}
}

// again runs op until it succeeds, again (retry set) after each
// temporary failure (ErrUnavailable) up to five times; any other error
// fails the test.
func again(t *testing.T, what string, op func(retry bool) error) {
	t.Helper()
	for try := 1; ; try++ {
		err := op(try > 1)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrUnavailable) || try == 5 {
			t.Fatalf("%s: %v", what, err)
		}
		t.Logf("%s: %v; again", what, err)
	}
}

func checkOf(v FolderView) FolderCheck {
	return FolderCheck{ID: v.Folder.ID, UIDValidity: v.Folder.UIDValidity}
}

// entriesDuring is how many entries n applied while op ran.
func entriesDuring(t *testing.T, n *Node, op func() error) uint64 {
	t.Helper()
	before := n.State().Applied()
	if err := op(); err != nil {
		t.Fatal(err)
	}
	return n.State().Applied() - before
}

// A MOVE, a STORE, an EXPUNGE, a folder delete and a mailbox removal of more messages than one entry
// may act on (Config.EntryMessages) are proposed as several entries and
// leave the state one entry would have left: every message moved, every
// one expunged, the folder gone and the body's references released, on
// every node.
func TestLargeFolderOperationsAreSplit(t *testing.T) {
	const log2, per = 13, 1000
	ns := pieceCluster(t, per)
	ctx := ctxT(t, 2*time.Minute)
	a := "a@example.com"
	big := bigFolder(t, ns[0], "Big", log2)
	all := viewUIDs(big)
	hash := big.Messages[0].Hash
	if err := ns[0].CreateFolder(ctx, a, "Moved", ""); err != nil {
		t.Fatal(err)
	}

	// A session names the UIDs of a view read on its own node.
	if err := ns[1].Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	var moved CopyResult
	n := entriesDuring(t, ns[1], func() (err error) {
		moved, err = ns[1].Copy(ctx, a, "Big", "Moved", all, true, checkOf(big))
		return err
	})
	if n < 1<<log2/per {
		t.Errorf("MOVE of %d messages took %d entries", len(all), n)
	}
	if !slices.Equal(moved.SrcUIDs, all) || len(moved.DstUIDs) != len(all) {
		t.Errorf("MOVE answered %d source and %d destination UIDs, want %d", len(moved.SrcUIDs), len(moved.DstUIDs), len(all))
	}
	if v, err := ns[2].View(ctx, a, "Big"); err != nil || len(v.Messages) != 0 {
		t.Fatalf("source after MOVE: %d messages, %v", len(v.Messages), err)
	}
	mv, err := ns[2].View(ctx, a, "Moved")
	if err != nil || !slices.Equal(viewUIDs(mv), moved.DstUIDs) {
		t.Fatalf("destination after MOVE: %d messages, %v", len(mv.Messages), err)
	}

	// IMAP STORE 1:* +FLAGS \Deleted, then EXPUNGE.
	var stored []StoredMessage
	n = entriesDuring(t, ns[2], func() (err error) {
		stored, err = ns[2].StoreFlags(ctx, a, "Moved", viewUIDs(mv), FlagsAdd, []string{`\Deleted`}, checkOf(mv))
		return err
	})
	if n < 1<<log2/per || len(stored) != len(all) {
		t.Errorf("STORE on %d messages took %d entries and changed %d", len(all), n, len(stored))
	}
	var gone []uint32
	n = entriesDuring(t, ns[2], func() (err error) {
		gone, err = ns[2].Expunge(ctx, a, "Moved", nil, true, checkOf(mv))
		return err
	})
	if n < 1<<log2/per {
		t.Errorf("EXPUNGE of %d messages took %d entries", len(all), n)
	}
	if !slices.Equal(gone, moved.DstUIDs) {
		t.Errorf("EXPUNGE removed %d messages, want %d", len(gone), len(all))
	}

	// Mail appended to the folder while it is deleted goes with it: the
	// mailbox is left holding nothing.
	del := bigFolder(t, ns[0], "Doomed", log2)
	stop := make(chan struct{})
	var appends sync.WaitGroup
	appended := 0
	appends.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ns[1].Append(ctx, a, "Doomed", nil, time.Time{}, strings.NewReader("Subject: late\r\n\r\nlate\r\n")); err == nil {
				appended++
			}
		}
	})
	n = entriesDuring(t, ns[0], func() error { return ns[0].DeleteFolder(ctx, a, "Doomed") })
	close(stop)
	appends.Wait()
	t.Logf("%d messages appended to the folder while it was deleted", appended)
	if n < 1<<log2/per {
		t.Errorf("DELETE of a folder of %d messages took %d entries", len(del.Messages), n)
	}
	for _, node := range ns {
		if err := node.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		st := node.State()
		if _, err := st.Folder(a, "Doomed"); !errors.Is(err, fsm.ErrNotFound) && !errors.Is(err, fsm.ErrNoFolder) {
			t.Errorf("%s: deleted folder: %v", node.ID(), err)
		}
		mb, err := st.Mailbox(a)
		if err != nil || mb.Messages != 0 || mb.UsedBytes != 0 {
			fs, _ := st.Folders(a)
			t.Logf("%s: folders %+v", node.ID(), fs)
			t.Errorf("%s: mailbox holds %d messages, %d bytes (%v)", node.ID(), mb.Messages, mb.UsedBytes, err)
		}
		for _, h := range []string{hash, del.Messages[0].Hash} {
			if b, err := st.Body(h); err != nil || b.Refs != 0 {
				t.Errorf("%s: body %s has %d references (%v)", node.ID(), h[:8], b.Refs, err)
			}
		}
	}

	// mailbox rm through the admin API's path.
	last := bigFolder(t, ns[0], "Last", log2)
	n = entriesDuring(t, ns[2], func() error { _, err := ns[2].RemoveMailbox(ctx, a); return err })
	if n < 1<<log2/per {
		t.Errorf("removal of a mailbox of %d messages took %d entries", len(last.Messages), n)
	}
	for _, node := range ns {
		if err := node.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := node.State().Mailbox(a); !errors.Is(err, fsm.ErrNotFound) {
			t.Errorf("%s: removed mailbox: %v", node.ID(), err)
		}
		if b, err := node.State().Body(last.Messages[0].Hash); err != nil || b.Refs != 0 {
			t.Errorf("%s: body of the removed mailbox has %d references (%v)", node.ID(), b.Refs, err)
		}
	}
}

// A delivery made while a large folder is deleted commits between the
// pieces instead of after the whole delete. The figures are logged, not
// asserted: the machine running the tests is shared.
func TestDeliveryDuringLargeDelete(t *testing.T) {
	if testing.Short() {
		t.Skip("fills two folders of 2^15 messages")
	}
	for _, bc := range []struct {
		name string
		per  int
	}{{"one entry", 1 << 30}, {"pieces", DefaultEntryMessages}} {
		t.Run(bc.name, func(t *testing.T) {
			ns := pieceCluster(t, bc.per)
			ctx := ctxT(t, 2*time.Minute)
			a := "a@example.com"
			bigFolder(t, ns[0], "Big", 15)
			var wg sync.WaitGroup
			var took time.Duration
			wg.Go(func() {
				start := time.Now()
				if err := ns[0].DeleteFolder(ctx, a, "Big"); err != nil {
					t.Error(err)
				}
				took = time.Since(start)
			})
			var worst time.Duration
			deliveries := 0
			for done := false; !done; {
				start := time.Now()
				if _, err := ns[1].Append(ctx, "b@example.com", "INBOX", nil, time.Time{}, strings.NewReader("Subject: y\r\n\r\ny\r\n")); err != nil {
					t.Fatal(err)
				}
				worst = max(worst, time.Since(start))
				deliveries++
				_, err := ns[1].State().Folder(a, "Big")
				done = err != nil
			}
			wg.Wait()
			t.Logf("%s: delete of 2^15 messages took %v; %d deliveries meanwhile, the slowest %v", bc.name, took, deliveries, worst)
		})
	}
}

// splitPieces covers exactly the UIDs it was given, in ascending pieces
// of at most limit known messages and fsm.MaxUIDRanges ranges, and puts
// UIDs above every known message (mail yet to arrive) in the last.
func TestSplitPiecesBoundsEachPiece(t *testing.T) {
	var msgs []StoredMessage
	for uid := uint32(1); uid <= 25_000; uid += 2 { // 12,500 messages, odd UIDs
		msgs = append(msgs, StoredMessage{UID: uid})
	}
	var scattered []fsm.UIDRange // one range per message, past MaxUIDRanges
	for _, m := range msgs {
		scattered = append(scattered, fsm.UIDRange{m.UID, m.UID})
	}
	for _, tc := range []struct {
		name  string
		rs    []fsm.UIDRange
		limit int
	}{
		{"whole folder", wholeFolder, 1000},
		{"limit 1", []fsm.UIDRange{{1, 9}}, 1},
		{"gaps", []fsm.UIDRange{{2, 2}, {3, 999}, {1000, 1000}, {5001, 9000}, {20000, 30000}}, 777},
		{"many ranges", scattered, 20000},
		{"fits", []fsm.UIDRange{{1, 100}}, 1000},
	} {
		ps := splitPieces(tc.rs, msgs, tc.limit)
		var joined []fsm.UIDRange
		for i, p := range ps {
			n := 0
			for _, m := range msgs {
				if slices.ContainsFunc(p, func(r fsm.UIDRange) bool { return r[0] <= m.UID && m.UID <= r[1] }) {
					n++
				}
			}
			if n > tc.limit || len(p) > fsm.MaxUIDRanges || len(p) == 0 {
				t.Errorf("%s: piece %d covers %d messages in %d ranges", tc.name, i, n, len(p))
			}
			joined = append(joined, p...)
		}
		if !slices.Equal(mergeUIDRanges(joined), mergeUIDRanges(tc.rs)) {
			t.Errorf("%s: pieces cover %v, want %v", tc.name, mergeUIDRanges(joined), mergeUIDRanges(tc.rs))
		}
	}
}

// mergeUIDRanges joins adjacent ranges (the input ascends).
func mergeUIDRanges(rs []fsm.UIDRange) []fsm.UIDRange {
	var out []fsm.UIDRange
	for _, r := range rs {
		if k := len(out); k > 0 && uint64(out[k-1][1])+1 >= uint64(r[0]) {
			out[k-1][1] = max(out[k-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}
