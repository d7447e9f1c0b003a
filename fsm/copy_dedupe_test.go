package fsm

import (
	"errors"
	"testing"
)

// A Copy with an ID (encoding 8) copies once: the same command proposed
// again, as a node does when a leader change hid the first one's outcome,
// copies nothing and answers an empty result. Without an ID each copy
// copies.
func TestCopyWithIDCopiesOnce(t *testing.T) {
	a := deliveryFixture(t)
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Archive"})
	a.must(&Deliver{ID: "d1", Hash: bodyHash("one"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})

	named := &Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{1, 1}}, ID: "copy-1"}
	if _, err := EncodeAs(named, EncodingJSON7); !errors.Is(err, ErrEncoding) {
		t.Fatalf("a Copy ID in encoding 7: %v, want ErrEncoding", err)
	}
	first := a.applyAs(named, EncodingJSON8)
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	if res := first.Value.(CopyResult); len(res.Dst) != 1 {
		t.Fatalf("first copy: %+v, want one message copied", res)
	}
	again := a.applyAs(named, EncodingJSON8)
	if again.Err != nil {
		t.Fatal(again.Err)
	}
	if res := again.Value.(CopyResult); len(res.Src) != 0 || len(res.Dst) != 0 {
		t.Fatalf("the repeat: %+v, want nothing copied", res)
	}
	count := func() int {
		msgs, err := a.s.Messages("a@example.com", "Archive", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}
	if n := count(); n != 1 {
		t.Fatalf("Archive holds %d messages after a copy and its repeat, want 1", n)
	}
	plain := &Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{1, 1}}}
	a.must(plain)
	a.must(plain)
	if n := count(); n != 3 {
		t.Fatalf("Archive holds %d messages after two unnamed copies more, want 3", n)
	}
}
