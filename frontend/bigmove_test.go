package frontend_test

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// A MOVE of more messages than one raft entry may act on
// (node.Config.EntryMessages) is committed in pieces, and the client
// sees one MOVE: a COPYUID for every message, an EXPUNGE for each, the
// source empty and the destination holding them all.
func TestIMAPMoveOfALargeFolder(t *testing.T) {
	const log2, per = 9, 100 // the test client buffers at most 1,000 EXPUNGEs
	c, s, _ := largeInbox(t, log2, per)
	if err := s.Create("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	before := c.Nodes[1].State().Applied()
	md, err := s.Move(imap.SeqSet{{Start: 1, Stop: 0}}, "Archive").Wait()
	if err != nil {
		t.Fatalf("MOVE 1:* of %d messages: %v", 1<<log2, err)
	}
	if n := c.Nodes[1].State().Applied() - before; n < 1<<log2/per {
		t.Errorf("MOVE of %d messages took %d entries, want pieces of %d", 1<<log2, n, per)
	}
	src, _ := md.SourceUIDs.(imap.UIDSet).Nums()
	dst, _ := md.DestUIDs.(imap.UIDSet).Nums()
	if len(src) != 1<<log2 || len(dst) != 1<<log2 {
		t.Errorf("COPYUID names %d source and %d destination UIDs, want %d", len(src), len(dst), 1<<log2)
	}
	if n := s.Mailbox().NumMessages; n != 0 {
		t.Errorf("after MOVE 1:* the client counts %d messages in INBOX, want 0 (an EXPUNGE for each)", n)
	}
	sel, err := s.Select("Archive", nil).Wait()
	if err != nil || sel.NumMessages != 1<<log2 {
		t.Fatalf("Archive holds %d messages (%v)", sel.NumMessages, err)
	}
	if !slices.Equal(fetchUIDs(t, s), dst) {
		t.Errorf("Archive's UIDs are not the COPYUID's destination UIDs")
	}
}
