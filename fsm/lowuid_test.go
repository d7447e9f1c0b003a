package fsm

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// TestLowUIDFollowsExpunges: removals advance the folder's LowUID to its
// first live UID (UIDNext once empty), and whole-folder scans start
// there, so a POP3 mailbox emptied all day does not walk the tombstones
// of what it expunged.
func TestLowUIDFollowsExpunges(t *testing.T) {
	a := deliveryFixture(t)
	const box = "a@example.com"
	for range 10 {
		a.must(&Deliver{Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{box}})
	}
	low := func() uint32 {
		t.Helper()
		f, err := a.s.Folder(box, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		return f.LowUID
	}
	steps := []struct {
		expunge UIDRange
		want    uint32
	}{
		{UIDRange{1, 3}, 4},    // the lowest go: it moves to the next live UID
		{UIDRange{5, 6}, 4},    // a gap above it: it stays
		{UIDRange{4, 4}, 7},    // and walks past the gap when 4 goes
		{UIDRange{1, 100}, 11}, // empty: UIDNext, the next delivery's UID
	}
	for _, s := range steps {
		a.must(&Expunge{Mailbox: box, Folder: "INBOX", UIDs: []UIDRange{s.expunge}})
		if got := low(); got != s.want {
			t.Fatalf("after expunging %v: LowUID %d, want %d", s.expunge, got, s.want)
		}
	}
	a.must(&Deliver{Hash: bodyHash("x"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{box}})

	// A key below LowUID is never read by a whole-folder scan. Real state
	// never has one; one is planted here to show where scans start.
	f, _ := a.s.Folder(box, "INBOX")
	addr, _ := ParseAddress(box)
	raw, _ := Message{UID: 2, Hash: bodyHash("x"), Size: 1}.MarshalBinary()
	if err := a.s.view(func(r pebble.Reader) error {
		return r.(*pebble.DB).Set(messageKey(addr, f.ID, 2), raw, pebble.NoSync)
	}); err != nil {
		t.Fatal(err)
	}
	_, view, err := a.s.View(box, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	list, err := a.s.Messages(box, "INBOX", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range [][]Message{view, list} {
		if len(got) != 1 || got[0].UID != 11 {
			t.Fatalf("scan read %+v, want only UID 11", got)
		}
	}
}
