package node

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"powermail/storage"
)

// TestRemoteReadInMemory: a node without a replica reads a small body
// from the replicas into memory, skipping one whose copy is corrupt. It
// writes nothing to its own store, and serves the body again from its
// cache once no replica is reachable. A body above RemoteReadMax is copied
// into the store as before.
func TestRemoteReadInMemory(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) { cfg.RemoteReadMax = 64 << 10 })
	l := c.leader(time.Second)
	small := deliverN(t, l, 8, 5000)
	big := deliverN(t, l, 1, 100<<10)[0]
	ctx := ctxT(t, 30*time.Second)
	// The reader: the node without a copy of the most small bodies
	// (placement is random); hashes: the small bodies it holds no copy of.
	var reader *Node
	var hashes []storage.Hash
	for _, n := range c.nodes {
		n.Barrier(ctx)
		var lacks []storage.Hash
		for _, h := range small {
			if ok, _, _ := n.bodies.Has(ctx, h); !ok {
				lacks = append(lacks, h)
			}
		}
		if len(lacks) > len(hashes) {
			reader, hashes = n, lacks
		}
	}
	if len(hashes) < 2 {
		t.Fatalf("no node lacks two of %d bodies", len(small))
	}
	rec, _ := l.State().Body(hashes[0].String())
	if len(rec.Replicas) != 2 {
		t.Fatalf("%d bodies without a copy on %s (record %+v)", len(hashes), reader.ID(), rec)
	}
	if err := c.nodes[rec.Replicas[0]].bodies.Damage(ctx, hashes[0]); err != nil {
		t.Fatal(err)
	}
	read := func(h storage.Hash) {
		t.Helper()
		rd, err := reader.OpenBody(ctx, h.String())
		if err != nil {
			t.Fatalf("open %s on %s: %v", h, reader.ID(), err)
		}
		defer rd.Close()
		got, err := io.ReadAll(rd)
		if err != nil || storage.HashBytes(got) != h || rd.Size() != int64(len(got)) {
			t.Fatalf("read %s on %s: %d bytes (size %d), %v", h, reader.ID(), len(got), rd.Size(), err)
		}
	}
	read(hashes[0])
	if ok, _, _ := reader.bodies.Has(ctx, hashes[0]); ok {
		t.Error("a small remote body was copied into the reader's store")
	}
	read(big)
	if ok, _, _ := reader.bodies.Has(ctx, big); !ok {
		t.Error("a body above RemoteReadMax was not copied into the reader's store")
	}
	for id, n := range c.nodes {
		if n != reader {
			n.Kill()
			delete(c.nodes, id)
		}
	}
	read(hashes[0]) // from the cache: no replica is left to ask
	if _, err := reader.OpenBody(ctx, hashes[1].String()); err == nil || !strings.Contains(err.Error(), "no readable replica") {
		t.Errorf("open of an uncached body with every replica down: %v, want ErrBodyUnavailable", err)
	}
}

// A local copy whose chunks pass their checksums but whose whole-body
// hash fails at the end is an error to its reader, not a clean end: the
// bytes already handed out were wrong (a fallback could only resume at
// the end). The copy is reported, so a read after it gets a good one.
func TestBodyFailingItsHashAtTheEndIsAnError(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	h := deliverN(t, l, 1, 200<<10)[0] // several chunks
	ctx := ctxT(t, 30*time.Second)
	l.Barrier(ctx)
	rec, err := l.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	holder := c.nodes[rec.Replicas[0]]
	if err := holder.bodies.DamageKeepCRC(ctx, h, 1); err != nil {
		t.Fatal(err)
	}
	rd, err := holder.OpenBody(ctx, h.String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rd)
	rd.Close()
	if !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("reading a copy that fails its hash at the end: %v, want ErrCorrupt", err)
	}
	waitFor(t, 10*time.Second, "a good copy read again", func() bool {
		rd, err := holder.OpenBody(ctx, h.String())
		if err != nil {
			return false
		}
		defer rd.Close()
		got, err := io.ReadAll(rd)
		return err == nil && storage.HashBytes(got) == h
	})
}
