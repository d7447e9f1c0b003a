package fsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestAccessCommandsKeepInvariants applies a random mix of deliveries,
// appends, flag changes, copies, moves, expunges and folder changes, and
// checks after every step what IMAP, POP3 and garbage collection rely on:
// folder counters match the messages, mailbox totals match the folders,
// every body's reference count matches the messages that name it, and a
// folder never hands out a UID at or below one it handed out before.
func TestAccessCommandsKeepInvariants(t *testing.T) {
	a := deliveryFixture(t)
	rng := rand.New(rand.NewPCG(1, 2))
	box := "a@example.com"
	bodies := []string{"one", "two", "three", "four"}
	folders := []string{"INBOX", "Sent", "Trash"}
	seen := map[string][2]uint32{}  // folder -> UIDVALIDITY, UIDNEXT last seen
	views := map[string][]Message{} // folder -> messages last seen
	for step := 0; step < 400; step++ {
		f := folders[rng.IntN(len(folders))]
		g := folders[rng.IntN(len(folders))]
		lo := uint32(1 + rng.IntN(20))
		uids := []UIDRange{{lo, lo + uint32(rng.IntN(30))}} // some remove only part of a folder
		var cmd Command
		switch rng.IntN(9) {
		case 0, 1:
			b := bodies[rng.IntN(len(bodies))]
			cmd = &Deliver{Hash: bodyHash(b), Size: int64(len(b)), Replicas: []string{"n1", "n2"}, Mailboxes: []string{box, "b@example.com"}}
		case 2:
			b := bodies[rng.IntN(len(bodies))]
			cmd = &Deliver{Hash: bodyHash(b), Size: int64(len(b)), Replicas: []string{"n2", "n3"}, Mailboxes: []string{box}, Folder: f, Flags: []string{`\Seen`}}
		case 3:
			cmd = &FlagsStore{Mailbox: box, Folder: f, UIDs: uids, Op: FlagOp(rng.IntN(3)), Flags: [][]string{{`\Seen`}, {`\Deleted`}, {`\Seen`, "$Work"}}[rng.IntN(3)]}
		case 4:
			cmd = &Expunge{Mailbox: box, Folder: f, OnlyDeleted: rng.IntN(2) == 0, UIDs: uids}
		case 5, 6:
			cmd = &Copy{Mailbox: box, From: f, To: g, UIDs: uids, Move: rng.IntN(2) == 0}
		case 7:
			name := fmt.Sprintf("F%d", rng.IntN(3))
			if rng.IntN(2) == 0 {
				cmd = &FolderCreate{Mailbox: box, Name: name}
			} else {
				cmd = &FolderDelete{Mailbox: box, Name: name}
			}
			if !slices.Contains(folders, name) {
				folders = append(folders, name)
			}
		case 8:
			cmd = &FolderRename{Mailbox: box, From: f, To: fmt.Sprintf("R%d", step)}
			folders = append(folders, fmt.Sprintf("R%d", step))
		}
		r := a.apply(cmd)
		var be *Error
		if r.Err != nil && !errors.As(r.Err, &be) {
			t.Fatalf("step %d %T: %v", step, cmd, r.Err)
		}
		checkAccessInvariants(t, a.s, step, seen, box, "b@example.com")
		checkViewReusing(t, a.s, step, views, box)
	}
}

// checkLowUID: a scan of the whole folder from UID 1, ignoring LowUID,
// finds exactly the view's messages, and none below LowUID.
func checkLowUID(t *testing.T, s *State, step int, box string, f Folder, view []Message) {
	t.Helper()
	a, _ := ParseAddress(box)
	var all []Message
	err := s.view(func(r pebble.Reader) (err error) {
		all, err = scanMessages(r, messagePrefix(a, f.ID), 0, 0, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, view) {
		t.Fatalf("step %d: %s/%s view has %d messages, the folder %d (LowUID %d)", step, box, f.Name, len(view), len(all), f.LowUID)
	}
	if f.LowUID > f.UIDNext || len(all) > 0 && all[0].UID < f.LowUID {
		t.Fatalf("step %d: %s/%s LowUID %d, UIDNext %d, first UID %v", step, box, f.Name, f.LowUID, f.UIDNext, all[:min(1, len(all))])
	}
}

// checkViewReusing: a view decoded against an older view of the folder
// (ViewReusing) has the same messages as a fresh one, whatever changed
// in between.
func checkViewReusing(t *testing.T, s *State, step int, views map[string][]Message, box string) {
	t.Helper()
	fs, err := s.Folders(box)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		_, want, err := s.View(box, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		_, got, err := s.ViewReusing(box, f.Name, views[f.Name])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, func(a, b Message) bool {
			return a.UID == b.UID && a.Hash == b.Hash && a.Size == b.Size && a.InternalDate == b.InternalDate && slices.Equal(a.Flags, b.Flags)
		}) {
			t.Fatalf("step %d: %s/%s decoded against its older view: %+v, want %+v", step, box, f.Name, got, want)
		}
		views[f.Name] = got
	}
}

func checkAccessInvariants(t *testing.T, s *State, step int, seen map[string][2]uint32, boxes ...string) {
	t.Helper()
	refs := map[string]int64{}
	for _, box := range boxes {
		mb, err := s.Mailbox(box)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := s.Folders(box)
		if err != nil {
			t.Fatal(err)
		}
		var msgs, used int64
		for _, f := range fs {
			_, list, err := s.View(box, f.Name)
			if err != nil {
				t.Fatal(err)
			}
			checkLowUID(t, s, step, box, f, list)
			want := Folder{Name: f.Name, ID: f.ID, UIDValidity: f.UIDValidity, UIDNext: f.UIDNext, SpecialUse: f.SpecialUse,
				Subscribed: f.Subscribed, ModSeq: f.ModSeq, LowUID: f.LowUID}
			for _, m := range list {
				want.count(m, +1)
				refs[m.Hash]++
				if m.UID >= f.UIDNext {
					t.Fatalf("step %d: %s/%s has UID %d, UIDNEXT %d", step, box, f.Name, m.UID, f.UIDNext)
				}
			}
			if want != f {
				t.Fatalf("step %d: %s/%s counters %+v, messages give %+v", step, box, f.Name, f, want)
			}
			key := box + "/" + f.Name
			if prev, ok := seen[key]; ok && prev[0] == f.UIDValidity && f.UIDNext < prev[1] {
				t.Fatalf("step %d: %s UIDNEXT went back from %d to %d", step, key, prev[1], f.UIDNext)
			}
			seen[key] = [2]uint32{f.UIDValidity, f.UIDNext}
			msgs += f.Messages
			used += f.Bytes
		}
		if mb.Messages != msgs || mb.UsedBytes != used {
			t.Fatalf("step %d: mailbox %s totals %d/%d, folders give %d/%d", step, box, mb.Messages, mb.UsedBytes, msgs, used)
		}
	}
	for _, b := range []string{"one", "two", "three", "four"} {
		rec, err := s.Body(bodyHash(b))
		if errors.Is(err, ErrNotFound) {
			if refs[bodyHash(b)] != 0 {
				t.Fatalf("step %d: body %s referenced %d times without a record", step, b, refs[bodyHash(b)])
			}
			continue
		}
		if rec.Refs != refs[bodyHash(b)] {
			t.Fatalf("step %d: body %s has refs %d, messages name it %d times", step, b, rec.Refs, refs[bodyHash(b)])
		}
	}
}
