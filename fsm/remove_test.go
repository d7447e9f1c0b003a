package fsm

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"
)

// rangeTombstones counts the range deletions anywhere in the state.
func rangeTombstones(t *testing.T, s *State) int {
	t.Helper()
	n := 0
	err := s.db.ScanInternal(context.Background(), block.CategoryUnknown, nil, nil,
		func(*pebble.InternalKey, pebble.LazyValue, pebble.IteratorLevel) error { return nil },
		func(start, end []byte, _ pebble.SeqNum) error { n++; return nil },
		nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMailboxRemoveUsesPointDeletes: removing a mailbox of ordinary size
// deletes its messages and folders with point tombstones, so a bulk
// deprovisioning does not fill the memtable with range tombstones that
// every later read re-fragments. Only a mailbox past pointDeleteLimit
// messages gets one range tombstone.
func TestMailboxRemoveUsesPointDeletes(t *testing.T) {
	a := deliveryFixture(t)
	a.must(&FolderCreate{Mailbox: "b@example.com", Name: "Projects"})
	for i := range 50 {
		a.must(&Deliver{Hash: bodyHash(fmt.Sprint(i % 3)), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com", "b@example.com"}})
	}
	a.must(&MailboxRemove{Address: "b@example.com"})
	if n := rangeTombstones(t, a.s); n != 0 {
		t.Fatalf("%d range tombstones after removing a 50-message mailbox", n)
	}
	checkRemoved(t, a.s, "b@example.com")
	if b, err := a.s.Body(bodyHash("0")); err != nil || b.Refs != 17 {
		t.Fatalf("body refs %d after b's removal, want a's 17 (%v)", b.Refs, err)
	}

	entries := make([]Entry, 0, 500)
	for i := range pointDeleteLimit + 1 {
		data, err := Encode(&Deliver{Hash: bodyHash("big"), Size: 1, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"b@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "b@example.com"}}})
		}
		a.index++
		entries = append(entries, Entry{Index: a.index, Data: data})
		if len(entries) == cap(entries) || i == pointDeleteLimit {
			for _, r := range a.s.ApplyBatch(entries) {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
			}
			entries = entries[:0]
		}
	}
	a.must(&MailboxRemove{Address: "b@example.com"})
	if n := rangeTombstones(t, a.s); n != 1 {
		t.Fatalf("%d range tombstones after removing a mailbox past the limit, want 1", n)
	}
	checkRemoved(t, a.s, "b@example.com")
}

func checkRemoved(t *testing.T, s *State, box string) {
	t.Helper()
	if _, err := s.Mailbox(box); err == nil {
		t.Fatalf("%s still exists", box)
	}
	addr, _ := ParseAddress(box)
	for _, p := range [][]byte{[]byte("m\x00" + addrPart(addr) + "\x00"), folderPrefix(addr)} {
		err := s.view(func(r pebble.Reader) error {
			it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
			if err != nil {
				return err
			}
			defer it.Close()
			if it.First() {
				return fmt.Errorf("key %q left", it.Key())
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
