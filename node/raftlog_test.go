package node

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// TestRaftLogKeepsNoFreelist checks that raft's bolt file is written
// without a freelist page (raftLogOptions), and that it opens again with
// every entry: bolt then rebuilds the freelist from the file.
func TestRaftLogKeepsNoFreelist(t *testing.T) {
	c, n := oneNodeWithMailboxes(t, 20)
	last, err := n.logStore.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	path := filepath.Join(c.dir, "n1", "raft", "raft.db")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Both meta pages (0 and 1) have been written by now; each names its
	// freelist page, or none (bolt's pgidNoFreelist, all ones).
	pageSize := int(binary.LittleEndian.Uint32(raw[16+8:]))
	for p := range 2 {
		meta := raw[p*pageSize+16:]
		if free := binary.LittleEndian.Uint64(meta[32:]); free != ^uint64(0) {
			t.Errorf("meta page %d names freelist page %d; want none", p, free)
		}
	}
	store, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: raftLogOptions()})
	if err != nil {
		t.Fatalf("reopen raft log: %v", err)
	}
	defer store.Close()
	if got, err := store.LastIndex(); err != nil || got != last {
		t.Fatalf("reopened log ends at %d (%v); want %d", got, err, last)
	}
}

// BenchmarkRaftLogStore measures one raft batch's commit to bolt (8
// entries of a Deliver's size), with the log truncated after every 4,096
// entries as snapshots do, with the freelist written on every commit and
// without (raftLogOptions).
func BenchmarkRaftLogStore(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts *bbolt.Options
	}{{"freelist-synced", nil}, {"no-freelist", raftLogOptions()}} {
		b.Run(bc.name, func(b *testing.B) {
			store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db"), BoltOptions: bc.opts})
			if err != nil {
				b.Fatal(err)
			}
			defer store.Close()
			data := make([]byte, 400)
			batch := make([]*raft.Log, 8)
			next, first := uint64(1), uint64(1)
			b.ReportAllocs()
			for b.Loop() {
				for i := range batch {
					batch[i] = &raft.Log{Index: next, Term: 1, Type: raft.LogCommand, Data: data}
					next++
				}
				if err := store.StoreLogs(batch); err != nil {
					b.Fatal(err)
				}
				if next-first > 2*4096 {
					if err := store.DeleteRange(first, next-4096); err != nil {
						b.Fatal(err)
					}
					first = next - 4096 + 1
				}
			}
		})
	}
}
