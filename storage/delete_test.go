package storage

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/sstable/block"
)

// Deleting a body of many chunks must leave no range tombstone: Pebble
// re-sorts every range tombstone of a memtable on the first read after a
// new one, so each large body deleted made the next reads slower.
func TestDeleteLargeBodyUsesPointTombstones(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, Options{ChunkSize: 4096})
	h, _, err := s.Put(ctx, bytes.NewReader(payload(40<<10, 3)), nil) // ten chunks
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, h); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Has(ctx, h); ok || err != nil {
		t.Fatalf("deleted body still there (%v)", err)
	}
	if n := countKeys(t, s, tagChunk); n != 0 {
		t.Fatalf("%d chunks left", n)
	}
	// Over the chunks only: the scan cannot read the counters' merge key.
	rangeDels := 0
	err = s.db.ScanInternal(ctx, block.CategoryUnknown, []byte{tagChunk}, []byte{tagChunk + 1},
		func(*pebble.InternalKey, pebble.LazyValue, pebble.IteratorLevel) error { return nil },
		func(start, end []byte, _ pebble.SeqNum) error { rangeDels++; return nil },
		nil, nil, nil)
	if err != nil || rangeDels != 0 {
		t.Fatalf("%d range tombstones after deleting a large body (%v)", rangeDels, err)
	}
}
