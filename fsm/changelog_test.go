package fsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// heldView is what a node's view cache keeps: a folder record and the
// messages read with it.
type heldView struct {
	f    Folder
	msgs []Message
}

// TestViewSinceMatchesFreshView applies random message and folder
// commands, several to a raft batch, including a mailbox removed and
// added again (its folder IDs start over). After every batch, every
// folder's view brought up to date from an older one (ViewSince, kept
// from a random earlier batch) must equal a fresh read.
func TestViewSinceMatchesFreshView(t *testing.T) {
	a := deliveryFixture(t)
	rng := rand.New(rand.NewPCG(7, 8))
	boxes := []string{"a@example.com", "b@example.com"}
	bodies := []string{"one", "two", "three"}
	held := map[string]heldView{} // box/folder -> an older view
	patched := 0
	for step := 0; step < 300; step++ {
		var entries []Entry
		for range 1 + rng.IntN(4) {
			data, err := Encode(randomAccessCommand(rng, boxes, bodies, step))
			if err != nil {
				t.Fatal(err)
			}
			a.index++
			entries = append(entries, Entry{Index: a.index, Data: data})
		}
		a.s.ApplyBatch(entries)
		for _, box := range boxes {
			fs, err := a.s.Folders(box)
			if err != nil {
				continue // removed, not added back yet
			}
			for _, f := range fs {
				key := box + "/" + f.Name
				_, want, err := a.s.View(box, f.Name)
				if err != nil {
					t.Fatal(err)
				}
				h := held[key]
				if h.f.ID == f.ID && h.f.UIDValidity == f.UIDValidity {
					uids, ok := a.s.changes.changed(messagePrefix(mustAddr(t, box), f.ID), h.f.ModSeq, f.ModSeq)
					if ok && len(uids) < len(want) {
						patched++
					}
				}
				gotF, got, err := a.s.ViewSince(box, f.Name, h.f, h.msgs)
				if err != nil {
					t.Fatal(err)
				}
				if !sameMessages(got, want) || gotF.ModSeq != f.ModSeq {
					t.Fatalf("step %d: %s brought up from ModSeq %d to %d: %+v, want %+v", step, key, h.f.ModSeq, f.ModSeq, got, want)
				}
				if rng.IntN(3) > 0 {
					held[key] = heldView{gotF, got}
				}
			}
		}
	}
	if patched < 100 {
		t.Errorf("only %d views were brought up to date from the log; the test does not exercise it", patched)
	}
}

func randomAccessCommand(rng *rand.Rand, boxes, bodies []string, step int) Command {
	box := boxes[rng.IntN(len(boxes))]
	folders := []string{"INBOX", "Sent", "Trash", "F1"}
	f, g := folders[rng.IntN(len(folders))], folders[rng.IntN(len(folders))]
	uids := []UIDRange{{uint32(1 + rng.IntN(20)), uint32(21 + rng.IntN(30))}}
	switch rng.IntN(40) {
	case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11:
		b := bodies[rng.IntN(len(bodies))]
		return &Deliver{Hash: bodyHash(b), Size: int64(len(b)), Replicas: []string{"n1", "n2"}, Mailboxes: []string{box}, Folder: f}
	case 12, 13, 14, 15, 16, 17, 18, 19:
		return &FlagsStore{Mailbox: box, Folder: f, UIDs: uids, Op: FlagOp(rng.IntN(3)), Flags: [][]string{{`\Seen`}, {`\Deleted`}, {"$Work"}}[rng.IntN(3)]}
	case 20, 21, 22, 23:
		return &Expunge{Mailbox: box, Folder: f, OnlyDeleted: rng.IntN(2) == 0, UIDs: uids}
	case 24, 25, 26, 27, 28, 29, 30, 31:
		return &Copy{Mailbox: box, From: f, To: g, UIDs: uids, Move: rng.IntN(2) == 0}
	case 32, 33:
		return &FolderCreate{Mailbox: box, Name: "F1"}
	case 34, 35:
		return &FolderDelete{Mailbox: box, Name: "F1"}
	case 36:
		return &FolderRename{Mailbox: box, From: "INBOX", To: fmt.Sprintf("Old%d", step)}
	default:
		if rng.IntN(2) == 0 {
			return &MailboxRemove{Address: "b@example.com"}
		}
		return &MailboxAdd{Mailboxes: []NewMailbox{{Address: "b@example.com"}}}
	}
}

func sameMessages(got, want []Message) bool {
	return slices.EqualFunc(got, want, func(a, b Message) bool {
		return a.UID == b.UID && a.Hash == b.Hash && a.Size == b.Size && a.InternalDate == b.InternalDate && slices.Equal(a.Flags, b.Flags)
	})
}

func mustAddr(t *testing.T, s string) Address {
	t.Helper()
	a, err := ParseAddress(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestChangeLogBounds: a folder's log keeps its recent changes only, and
// a reader older than what it keeps is told to read the whole folder.
func TestChangeLogBounds(t *testing.T) {
	var l changeLog
	l.reset(10)
	p := []byte("folder")
	if _, ok := l.changed(p, 9, 20); ok {
		t.Errorf("a reader from before the log's start was not refused")
	}
	if uids, ok := l.changed(p, 10, 20); !ok || len(uids) != 0 {
		t.Errorf("no changes logged: %v %v", uids, ok)
	}
	for i := range uint64(changeLogPerFolder + 1) {
		l.record(p, 11+i, uint32(i%7))
	}
	if _, ok := l.changed(p, 11, 12); ok {
		t.Errorf("a reader older than the trimmed log was not refused")
	}
	last := uint64(11 + changeLogPerFolder)
	uids, ok := l.changed(p, last-3, last)
	want := []uint32{(changeLogPerFolder - 2) % 7, (changeLogPerFolder - 1) % 7, changeLogPerFolder % 7}
	slices.Sort(want)
	if !ok || !slices.Equal(uids, want) {
		t.Errorf("recent changes: %v %v", uids, ok)
	}
	if l.n != len(l.folders["folder"].changes) {
		t.Errorf("count %d, held %d", l.n, len(l.folders["folder"].changes))
	}
}
