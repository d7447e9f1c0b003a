package fsm

import (
	"errors"
	"slices"
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

// copyTwice applies a named Copy of a's INBOX UIDs 1-3 (UID 2 gone: two
// runs) to Archive at encoding enc, then the same command again, and
// returns both results.
func copyTwice(t *testing.T, enc int, move bool) (first, again CopyResult, a *applier) {
	t.Helper()
	a = deliveryFixture(t)
	a.raiseTo(enc)
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Archive"})
	for i, body := range []string{"one", "two", "three", "four"} {
		a.must(&Deliver{ID: "d" + body, Hash: bodyHash(body), Size: int64(10 + i), Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	}
	a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{2, 2}}})
	a.must(&Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{4, 4}}}) // Archive's UIDNEXT moves on
	named := &Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{1, 4}}, Move: move, ID: "copy-1"}
	r1 := a.applyAs(named, NewestEncoding)
	r2 := a.applyAs(named, NewestEncoding)
	if r1.Err != nil || r2.Err != nil {
		t.Fatalf("copy %v, its repeat %v", r1.Err, r2.Err)
	}
	return r1.Value.(CopyResult), r2.Value.(CopyResult), a
}

// From command encoding 14 the dedupe record of a named Copy keeps the
// UIDs it gave, and a repeat (proposed again after a leader change hid
// the first commit) answers them, so that node can answer COPYUID for
// that piece or expunge its copies when a later piece fails. The repeat
// still copies nothing; a MOVE's answers the same.
func TestCopyRepeatAnswersItsUIDsFromEncoding14(t *testing.T) {
	for _, move := range []bool{false, true} {
		first, again, a := copyTwice(t, EncodingJSON14, move)
		if !slices.Equal(first.Src, []uint32{1, 3, 4}) || len(first.Dst) != 3 || first.UIDValidity == 0 {
			t.Fatalf("move %v: first copy %+v", move, first)
		}
		if again.UIDValidity != first.UIDValidity || !slices.Equal(again.Src, first.Src) || !slices.Equal(again.Dst, first.Dst) {
			t.Fatalf("move %v: the repeat answered %+v, want %+v", move, again, first)
		}
		if msgs, err := a.s.Messages("a@example.com", "Archive", 0, 0); err != nil || len(msgs) != 4 {
			t.Fatalf("move %v: Archive holds %d messages (%v), want 4: the repeat copied", move, len(msgs), err)
		}
	}
}

// A repeat of a copy with no messages answers the destination's
// UIDVALIDITY and no UIDs; one of a copy larger than
// MaxCopyRecordMessages answers nothing, as below 14.
func TestCopyRepeatRecordBounds(t *testing.T) {
	a := deliveryFixture(t)
	a.raiseTo(EncodingJSON14)
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Archive"})
	empty := &Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{7, 9}}, ID: "copy-empty"}
	r1, r2 := a.applyAs(empty, NewestEncoding), a.applyAs(empty, NewestEncoding)
	if r1.Err != nil || r2.Err != nil {
		t.Fatal(r1.Err, r2.Err)
	}
	if got, want := r2.Value.(CopyResult), r1.Value.(CopyResult); got.UIDValidity != want.UIDValidity || len(got.Dst) != 0 {
		t.Fatalf("repeat of an empty copy: %+v, want %+v", got, want)
	}
	rec := copyRecordOf(CopyResult{UIDValidity: 7, Src: make([]uint32, MaxCopyRecordMessages+1), Dst: make([]uint32, MaxCopyRecordMessages+1)})
	if rec.UIDValidity != 0 {
		t.Fatalf("a record of %d copies keeps UIDs", MaxCopyRecordMessages+1)
	}
	odd := CopyResult{UIDValidity: 7, Src: []uint32{9, 3, 4, 5, 1}, Dst: []uint32{20, 21, 22, 23, 24}}
	if back := copyRecordOf(odd).result(); !slices.Equal(back.Src, odd.Src) || !slices.Equal(back.Dst, odd.Dst) {
		t.Fatalf("record round trip: %+v, want %+v", back, odd)
	}
}

// Below 14 a repeat answers an empty result, as from 8 on: the record
// keeps no UIDs.
func TestCopyRepeatAnswersNoUIDsBelowEncoding14(t *testing.T) {
	first, again, _ := copyTwice(t, EncodingJSON13, false)
	if len(first.Dst) != 3 {
		t.Fatalf("first copy %+v", first)
	}
	if again.UIDValidity != 0 || len(again.Src) != 0 || len(again.Dst) != 0 {
		t.Fatalf("at 13 the repeat answered %+v, want an empty result, as before", again)
	}
}

// A copy recorded at 13 and repeated after the raise to 14 answers as a
// repeat did before: its record keeps no UIDs.
func TestCopyRepeatAcrossTheRaiseTo14(t *testing.T) {
	a := deliveryFixture(t)
	a.raiseTo(EncodingJSON13)
	a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Archive"})
	a.must(&Deliver{ID: "d1", Hash: bodyHash("one"), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	named := &Copy{Mailbox: "a@example.com", From: "INBOX", To: "Archive", UIDs: []UIDRange{{1, 1}}, ID: "copy-1"}
	if r := a.applyAs(named, NewestEncoding); r.Err != nil || len(r.Value.(CopyResult).Dst) != 1 {
		t.Fatalf("first copy: %+v", r)
	}
	a.raiseTo(EncodingJSON14)
	r := a.applyAs(named, NewestEncoding)
	if res := r.Value.(CopyResult); r.Err != nil || res.UIDValidity != 0 || len(res.Dst) != 0 {
		t.Fatalf("repeat after the raise: %+v, %v; want an empty result", res, r.Err)
	}
}
