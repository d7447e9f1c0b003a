package fsm

import (
	"errors"
	"strings"
	"testing"
)

// A message command with a FolderCheck acts only on that folder: after
// RENAME A B and RENAME C A, the UIDs taken from A are not C's. Such a
// command needs EncodingJSON4, which an older release refuses to apply.
func TestFolderCheck(t *testing.T) {
	a := deliveryFixture(t)
	for _, f := range []string{"A", "C"} {
		a.must(&FolderCreate{Mailbox: "a@example.com", Name: f})
		a.must(&Deliver{ID: "d-" + f, Hash: bodyHash(f), Size: 1, Replicas: []string{"n1", "n2"},
			Mailboxes: []string{"a@example.com"}, Folder: f, Flags: []string{`\Deleted`}})
	}
	fa, err := a.s.Folder("a@example.com", "A")
	if err != nil {
		t.Fatal(err)
	}
	was := &FolderCheck{ID: fa.ID, UIDValidity: fa.UIDValidity}
	if _, err := EncodeAs(&Expunge{Mailbox: "a@example.com", Folder: "A", Expect: was}, EncodingJSON3); !errors.Is(err, ErrEncoding) {
		t.Fatalf("a FolderCheck in encoding 3: %v, want ErrEncoding", err)
	}
	data, err := EncodeAs(&Expunge{Mailbox: "a@example.com", Folder: "A", Expect: was}, EncodingJSON4)
	if err != nil || data[1] != EncodingJSON4 {
		t.Fatalf("a FolderCheck in encoding 4: %v, encoding byte %d", err, data[1])
	}

	a.must(&FolderRename{Mailbox: "a@example.com", From: "A", To: "B"})
	a.must(&FolderRename{Mailbox: "a@example.com", From: "C", To: "A"})
	for _, c := range []Command{
		&Expunge{Mailbox: "a@example.com", Folder: "A", OnlyDeleted: true, Expect: was},
		&FlagsStore{Mailbox: "a@example.com", Folder: "A", UIDs: []UIDRange{{1, 1}}, Op: FlagsSet, Expect: was},
		&Copy{Mailbox: "a@example.com", From: "A", To: "INBOX", UIDs: []UIDRange{{1, 1}}, Move: true, Expect: was},
	} {
		if r := a.applyAs(c, EncodingJSON4); !errors.Is(r.Err, ErrFolderChanged) || Code(r.Err) != "folder_changed" {
			t.Errorf("%T on the folder that took A's name: %v, want ErrFolderChanged", c, r.Err)
		}
	}
	msgs, err := a.s.Messages("a@example.com", "A", 0, 0)
	if err != nil || len(msgs) != 1 || len(msgs[0].Flags) != 1 {
		t.Fatalf("the folder that took A's name: %+v %v, want its message untouched", msgs, err)
	}
	// On the folder it names (now B), the command acts.
	if r := a.applyAs(&Expunge{Mailbox: "a@example.com", Folder: "B", OnlyDeleted: true, Expect: was}, EncodingJSON4); r.Err != nil {
		t.Fatalf("expunge of the expected folder: %v", r.Err)
	}
	if msgs, _ := a.s.Messages("a@example.com", "B", 0, 0); len(msgs) != 0 {
		t.Errorf("B keeps %d messages after its expunge", len(msgs))
	}
}

// Under the distinct rule every folder gets a UIDVALIDITY of its own, so
// deleting Trash and renaming Junk (created with it) to Trash gives the
// name a value it never had; values only grow, past the first rule's too.
func TestDistinctUIDValidity(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "old@example.com"}}}) // the first rule
	if _, err := EncodeAs(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "new@example.com"}}, Distinct: true}, EncodingJSON3); !errors.Is(err, ErrEncoding) {
		t.Fatalf("the distinct rule in encoding 3: %v, want ErrEncoding", err)
	}
	if r := a.applyAs(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "new@example.com"}}, Distinct: true}, EncodingJSON4); r.Err != nil {
		t.Fatal(r.Err)
	}
	validities := func(box string) map[string]uint32 {
		t.Helper()
		fs, err := a.s.Folders(box)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]uint32{}
		for _, f := range fs {
			out[f.Name] = f.UIDValidity
		}
		return out
	}
	old, fresh := validities("old@example.com"), validities("new@example.com")
	seen := map[uint32]bool{}
	for name, v := range fresh {
		if seen[v] || v <= old["INBOX"] {
			t.Errorf("%s has UIDVALIDITY %d: shared, or not above the first rule's %d", name, v, old["INBOX"])
		}
		seen[v] = true
	}
	if old["Trash"] != old["Junk"] {
		t.Fatalf("the first rule gave Trash and Junk %d and %d; the test expects them shared", old["Trash"], old["Junk"])
	}
	trash := fresh["Trash"]
	a.must(&FolderDelete{Mailbox: "new@example.com", Name: "Trash"})
	a.applyAs(&FolderRename{Mailbox: "new@example.com", From: "Junk", To: "Trash", Distinct: true}, EncodingJSON4)
	if got := validities("new@example.com")["Trash"]; got == trash {
		t.Errorf("Junk renamed to Trash has the deleted Trash's UIDVALIDITY %d", got)
	}
	if r := a.applyAs(&FolderCreate{Mailbox: "new@example.com", Name: "Later", Distinct: true}, EncodingJSON4); r.Err != nil {
		t.Fatal(r.Err)
	}
	if v := validities("new@example.com")["Later"]; seen[v] {
		t.Errorf("a later folder got UIDVALIDITY %d, already given out", v)
	}
}

// RENAME INBOX INBOX/old moves INBOX's messages below it (RFC 9051
// §6.3.6), under the encoding 4 rule; the first rule refused it.
func TestRenameInboxToItsChild(t *testing.T) {
	a := deliveryFixture(t)
	a.must(&Deliver{ID: "d1", Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	if r := a.apply(&FolderRename{Mailbox: "a@example.com", From: "INBOX", To: "INBOX/old"}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("the first rule: %v, want ErrInvalid", r.Err)
	}
	if r := a.applyAs(&FolderRename{Mailbox: "a@example.com", From: "INBOX", To: "INBOX/old", InboxChild: true}, EncodingJSON4); r.Err != nil {
		t.Fatal(r.Err)
	}
	inbox, _ := a.s.Messages("a@example.com", "INBOX", 0, 0)
	old, _ := a.s.Messages("a@example.com", "INBOX/old", 0, 0)
	if len(inbox) != 0 || len(old) != 1 {
		t.Fatalf("INBOX %d, INBOX/old %d messages; want 0 and 1", len(inbox), len(old))
	}
}

// Keywords match without case under the encoding 4 rule (RFC 9051
// §2.3.2): adding "work" to a message with "Work" keeps one, removing
// "WORK" removes it; the first rule told them apart.
func TestKeywordsFoldCase(t *testing.T) {
	a := deliveryFixture(t)
	a.must(&Deliver{ID: "d1", Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}, Flags: []string{"Work"}})
	flags := func() []string {
		msgs, err := a.s.Messages("a@example.com", "INBOX", 0, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("messages: %v %v", msgs, err)
		}
		return msgs[0].Flags
	}
	store := func(op FlagOp, fold bool, fl ...string) {
		t.Helper()
		c := &FlagsStore{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{1, 1}}, Op: op, Flags: fl, FoldKeywords: fold}
		if r := a.applyAs(c, EncodingJSON4); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	store(FlagsAdd, true, "work", `\Seen`)
	if got := strings.Join(flags(), " "); got != `Work \Seen` {
		t.Errorf("+FLAGS (work \\Seen) on Work: %q", got)
	}
	store(FlagsRemove, true, "WORK")
	if got := strings.Join(flags(), " "); got != `\Seen` {
		t.Errorf("-FLAGS (WORK): %q", got)
	}
	store(FlagsSet, true, "Home", "home")
	if got := strings.Join(flags(), " "); got != "Home" {
		t.Errorf("FLAGS (Home home): %q", got)
	}
	store(FlagsAdd, false, "hOME") // the first rule
	if got := strings.Join(flags(), " "); got != "Home hOME" {
		t.Errorf("+FLAGS under the first rule: %q", got)
	}
}

// The raise to encoding 4 is itself written in 4, so a release before it
// stops there instead of refusing the raise and going on; once at 4 the
// encoding is not lowered, and a folder created without Distinct (a
// proposer that read an older setting) still takes the counter's next
// value, never one given out already.
func TestEncoding4RaiseAndAfter(t *testing.T) {
	raise := &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON4}}
	data, err := EncodeAs(raise, EncodingJSON)
	if err != nil || data[1] != EncodingJSON4 {
		t.Fatalf("the raise to 4 encoded as %v, %v; want encoding 4", data[:2], err)
	}
	a := deliveryFixture(t)
	if r := a.applyAs(raise, EncodingJSON4); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := a.applyAs(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON3}}, EncodingJSON4); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("lowering the encoding from 4: %v, want ErrInvalid", r.Err)
	}
	a.applyAs(&FolderCreate{Mailbox: "a@example.com", Name: "One", Distinct: true}, EncodingJSON4)
	a.applyAs(&FolderCreate{Mailbox: "a@example.com", Name: "Two", Distinct: true}, EncodingJSON4)
	given := map[uint32]bool{}
	fs, _ := a.s.Folders("a@example.com")
	for _, f := range fs {
		given[f.UIDValidity] = true
	}
	a.must(&FolderDelete{Mailbox: "a@example.com", Name: "Two"})
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Two"}) // no Distinct
	f, err := a.s.Folder("a@example.com", "Two")
	if err != nil || given[f.UIDValidity] {
		t.Fatalf("Two created again without Distinct: UIDVALIDITY %d (%v), given out already: %v", f.UIDValidity, err, given)
	}
}

// A state at encoding 4 is snapshotted under a header a release before 4
// refuses (it would install it and go on by the old rules); one below 4
// keeps the old header. This release restores both.
func TestSnapshotHeaderFollowsTheEncoding(t *testing.T) {
	a := deliveryFixture(t)
	a.must(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON3}})
	old := dump(t, a.s)
	if r := a.applyAs(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON4}}, EncodingJSON4); r.Err != nil {
		t.Fatal(r.Err)
	}
	cur := dump(t, a.s)
	if !strings.HasPrefix(string(old), snapshotMagic) || !strings.HasPrefix(string(cur), snapshotMagicV2) {
		t.Fatalf("headers %q and %q, want v1 below encoding 4 and v2 at it", old[:len(snapshotMagic)], cur[:len(snapshotMagicV2)])
	}
	for _, snap := range [][]byte{old, cur} {
		b, err := Open(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Restore(strings.NewReader(string(snap))); err != nil {
			t.Errorf("restore of a %q snapshot: %v", snap[:len(snapshotMagic)-1], err)
		}
		b.Close()
	}
}

// The raise to encoding 5 is written in 5 (a release that reads up to 4
// stops there instead of refusing it and going on), a leader at 4 admits
// it, and it is not lowered again. Other commands keep their encodings.
func TestEncoding5Raise(t *testing.T) {
	raise := &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON5}}
	data, err := EncodeAs(raise, EncodingJSON4)
	if err != nil || data[1] != EncodingJSON5 {
		t.Fatalf("the raise to 5 encoded as %v, %v; want encoding 5", data[:2], err)
	}
	if err := CheckEncoding(data, EncodingJSON4); err != nil {
		t.Fatalf("a leader at 4 refuses the raise: %v", err)
	}
	exp, err := EncodeAs(&Expunge{Mailbox: "a@example.com", Folder: "A", Expect: &FolderCheck{ID: 1, UIDValidity: 2}}, EncodingJSON5)
	if err != nil || exp[1] != EncodingJSON4 {
		t.Fatalf("an Expunge at 5 encoded as %v, %v; want encoding 4", exp[:2], err)
	}
	a := deliveryFixture(t)
	if r := a.applyAs(raise, EncodingJSON5); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := a.applyAs(&SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: EncodingJSON4}}, EncodingJSON5); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("lowering the encoding from 5 to 4: %v, want ErrInvalid", r.Err)
	}
}
