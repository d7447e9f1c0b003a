package fsm

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"
)

// Expiry past the window must leave no range tombstones: every read of the
// state re-sorts the memtable's range tombstones once a new one arrives,
// so one per delivery made applies slower the longer the memtable lived.
// Expiry takes its records from the in-memory order, which Open rebuilds.
func TestDedupeExpiryUsesPointDeletesAndSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	a := reopenableFixture(t, dir)
	s := a.s
	deliver := func(id string) {
		a.must(&Deliver{ID: id, Hash: bodyHash(id), Size: 10, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
	}
	const old = 150 // more than one apply expires (64), so a backlog drains
	for i := range old {
		deliver(fmt.Sprintf("old-%d", i))
	}
	a.index += dedupeWindow
	deliver("new-0")
	// Half way through the backlog, a restart must pick up the rest.
	s.Close()
	var err error
	if a.s, err = Open(dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer a.s.Close()
	if len(a.s.ids.order) != old-64+1 {
		t.Fatalf("%d records in the reopened order, want %d", len(a.s.ids.order), old-64+1)
	}
	for i := 1; i < 4; i++ {
		deliver(fmt.Sprintf("new-%d", i))
	}

	tx := &txn{b: a.s.db.NewIndexedBatch()}
	for i := range old {
		id := fmt.Sprintf("old-%d", i)
		if _, ok, _ := seenDelivery(tx, id); ok || a.s.ids.mayHave(id) {
			t.Fatalf("%s not expired", id)
		}
	}
	var live []string
	it, err := a.s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("y\x00"), UpperBound: []byte("y\x01")})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		live = append(live, string(it.Key()[len("y\x00")+9:]))
	}
	it.Close()
	if fmt.Sprint(live) != "[new-0 new-1 new-2 new-3]" || len(a.s.ids.order) != 4 {
		t.Fatalf("order keys left %v, %d in memory", live, len(a.s.ids.order))
	}

	rangeDels := 0
	err = a.s.db.ScanInternal(context.Background(), block.CategoryUnknown, nil, nil,
		func(*pebble.InternalKey, pebble.LazyValue, pebble.IteratorLevel) error { return nil },
		func(start, end []byte, _ pebble.SeqNum) error { rangeDels++; return nil },
		nil, nil, nil)
	if err != nil || rangeDels != 0 {
		t.Fatalf("%d range tombstones in the state (%v)", rangeDels, err)
	}
}
