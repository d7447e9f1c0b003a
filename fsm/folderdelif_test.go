package fsm

import (
	"errors"
	"testing"
)

// madeFolder creates name in a@example.com and returns the condition an
// undo that found it as made would delete it under.
func madeFolder(t *testing.T, a *applier, name string) *FolderDeleteIf {
	t.Helper()
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: name})
	f, err := a.s.Folder("a@example.com", name)
	if err != nil {
		t.Fatal(err)
	}
	return &FolderDeleteIf{ID: f.ID, UIDValidity: f.UIDValidity, UIDNext: f.UIDNext, Empty: true, NoChild: true}
}

// appendTo delivers one message to folder, as an APPEND does.
func appendTo(t *testing.T, a *applier, folder, id string) {
	t.Helper()
	a.must(&Deliver{ID: id, Hash: bodyHash(id), Size: 1, Replicas: []string{"n1", "n2"},
		Mailboxes: []string{"a@example.com"}, Folder: folder})
}

// folderMessageCount is how many messages folder holds, or -1 if it does
// not exist.
func folderMessageCount(t *testing.T, a *applier, folder string) int {
	t.Helper()
	f, err := a.s.Folder("a@example.com", folder)
	if errors.Is(err, ErrNoFolder) || errors.Is(err, ErrNotFound) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return int(f.Messages)
}

// From encoding 16 a FolderDelete with a condition checks it in its own
// entry: a message APPENDed, or a folder created below, after the undo
// looked (here: before the delete's entry) keeps the folder and all it
// holds, refused with ErrDeleteCondition; so does another folder that
// took the name. A folder as it was checked is deleted. The condition
// cannot be written below 16.
func TestFolderDeleteConditionFromEncoding16(t *testing.T) {
	a := deliveryFixture(t)
	cond := madeFolder(t, a, "Made")
	appendTo(t, a, "Made", "between")
	del := &FolderDelete{Mailbox: "a@example.com", Name: "Made", If: cond}
	if _, err := EncodeAs(del, EncodingJSON15); !errors.Is(err, ErrEncoding) {
		t.Fatalf("a conditional delete in encoding 15: %v, want ErrEncoding", err)
	}
	if r := a.applyAs(del, EncodingJSON16); !errors.Is(r.Err, ErrDeleteCondition) || Code(r.Err) != "delete_condition" {
		t.Fatalf("delete of a folder a message reached since its check: %v, want ErrDeleteCondition", r.Err)
	}
	if n := folderMessageCount(t, a, "Made"); n != 1 {
		t.Fatalf("the folder a refused delete kept holds %d messages, want 1", n)
	}
	// Empty alone: a message that is there is kept whatever UIDNEXT says.
	emptyOnly := &FolderDeleteIf{ID: cond.ID, UIDValidity: cond.UIDValidity, Empty: true}
	if r := a.applyAs(&FolderDelete{Mailbox: "a@example.com", Name: "Made", If: emptyOnly}, EncodingJSON16); !errors.Is(r.Err, ErrDeleteCondition) {
		t.Fatalf("delete of a folder that holds a message, on Empty: %v, want ErrDeleteCondition", r.Err)
	}

	kid := madeFolder(t, a, "Kid")
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Kid/new"})
	if r := a.applyAs(&FolderDelete{Mailbox: "a@example.com", Name: "Kid", If: kid}, EncodingJSON16); !errors.Is(r.Err, ErrDeleteCondition) {
		t.Fatalf("delete of a folder a child was created below since: %v, want ErrDeleteCondition", r.Err)
	}
	if folderMessageCount(t, a, "Kid") < 0 {
		t.Fatal("the folder with a new child was deleted")
	}

	was := madeFolder(t, a, "Again")
	a.must(&FolderDelete{Mailbox: "a@example.com", Name: "Again"})
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Again"})
	if r := a.applyAs(&FolderDelete{Mailbox: "a@example.com", Name: "Again", If: was}, EncodingJSON16); !errors.Is(r.Err, ErrDeleteCondition) {
		t.Fatalf("delete of another folder that took the checked one's name: %v, want ErrDeleteCondition", r.Err)
	}

	// A folder as checked goes; a sibling whose name starts alike
	// ("Kidney" beside "Kid2") is no child.
	same := madeFolder(t, a, "Kid2")
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Kid2ney"})
	if r := a.applyAs(&FolderDelete{Mailbox: "a@example.com", Name: "Kid2", If: same}, EncodingJSON16); r.Err != nil {
		t.Fatalf("delete of a folder as it was checked: %v", r.Err)
	}
	if folderMessageCount(t, a, "Kid2") >= 0 {
		t.Fatal("the folder as checked was not deleted")
	}
}

// Below encoding 16 a FolderDelete's condition is not taken, as a
// release before 16 drops the field: an entry that carries one in 15
// (no proposer writes one, EncodeAs refuses it) deletes the folder with
// the message that reached it, as every release agrees.
func TestFolderDeleteConditionIgnoredBelowEncoding16(t *testing.T) {
	a := deliveryFixture(t)
	cond := madeFolder(t, a, "Made")
	appendTo(t, a, "Made", "between")
	data, err := EncodeAs(&FolderDelete{Mailbox: "a@example.com", Name: "Made", If: cond}, EncodingJSON16)
	if err != nil || data[1] != EncodingJSON16 {
		t.Fatalf("a conditional delete in encoding 16: %v, encoding byte %d", err, data[1])
	}
	data[1] = EncodingJSON15
	a.index++
	if r := a.s.ApplyBatch([]Entry{{Index: a.index, Data: data}})[0]; r.Err != nil {
		t.Fatalf("a conditional delete written in 15: %v, want it applied as unconditional", r.Err)
	}
	if n := folderMessageCount(t, a, "Made"); n != -1 {
		t.Fatalf("after a delete written in 15 the folder holds %d messages, want it deleted", n)
	}
}
