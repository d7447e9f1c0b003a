package storage

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// benchStore opens a store on the real disk whose FS counts WAL fsyncs.
func benchStore(b *testing.B) (*Store, *atomic.Int64) {
	var syncs atomic.Int64
	fs := syncCountFS{FS: vfs.Default, n: &syncs}
	s, _ := newStore(b, Options{FS: fs, Logger: slog.New(slog.DiscardHandler)})
	return s, &syncs
}

// syncCountFS counts Sync and SyncData calls on WAL files. (errorfs cannot
// do this: files it hands out through ReuseForWrite, i.e. recycled WALs,
// are not wrapped.)
type syncCountFS struct {
	vfs.FS
	n *atomic.Int64
}

func (fs syncCountFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return syncCountFile{File: f, n: fs.n}, nil
}

func (fs syncCountFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs syncCountFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

type syncCountFile struct {
	vfs.File
	n *atomic.Int64
}

func (f syncCountFile) Sync() error     { f.n.Add(1); return f.File.Sync() }
func (f syncCountFile) SyncData() error { f.n.Add(1); return f.File.SyncData() }

// uniqueBody returns a reusable body whose first 8 bytes make it unique.
func uniqueBody(buf []byte, i uint64) []byte {
	binary.BigEndian.PutUint64(buf, i)
	return buf
}

func benchWrite(b *testing.B, size int) {
	s, syncs := benchStore(b)
	ctx := context.Background()
	buf := payload(size, 1)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	syncs.Store(0)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := s.Put(ctx, bytes.NewReader(uniqueBody(buf, uint64(i))), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(syncs.Load())/float64(b.N), "fsyncs/op")
}

func BenchmarkWrite4K(b *testing.B) { benchWrite(b, 4<<10) }
func BenchmarkWrite1M(b *testing.B) { benchWrite(b, 1<<20) }

// BenchmarkWriteParallel4K commits from many goroutines at once; fsyncs/op
// below 1 shows concurrent commits sharing WAL fsyncs.
func BenchmarkWriteParallel4K(b *testing.B) { benchWriteParallel(b, 4<<10) }

// BenchmarkWriteParallel256K is what a repair target absorbs: many
// attachment-sized bodies at once. It is the store's ceiling for repair.
func BenchmarkWriteParallel256K(b *testing.B) { benchWriteParallel(b, 256<<10) }

func benchWriteParallel(b *testing.B, size int) {
	s, syncs := benchStore(b)
	ctx := context.Background()
	var seq atomic.Uint64
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.SetParallelism(16) // goroutines per GOMAXPROCS; commits wait on I/O
	syncs.Store(0)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := payload(size, seq.Add(1)<<32)
		for pb.Next() {
			if _, _, err := s.Put(ctx, bytes.NewReader(uniqueBody(buf, seq.Add(1))), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(syncs.Load())/float64(b.N), "fsyncs/op")
}

func BenchmarkRead4K(b *testing.B) {
	s, _ := benchStore(b)
	ctx := context.Background()
	const n = 1024
	hashes := make([]Hash, n)
	buf := payload(4<<10, 1)
	for i := range hashes {
		h, _, err := s.Put(ctx, bytes.NewReader(uniqueBody(buf, uint64(i))), nil)
		if err != nil {
			b.Fatal(err)
		}
		hashes[i] = h
	}
	out := make([]byte, 8<<10)
	b.SetBytes(4 << 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r, err := s.Reader(ctx, hashes[i%n])
		if err != nil {
			b.Fatal(err)
		}
		if k, err := io.ReadFull(r, out[:4<<10]); err != nil || k != 4<<10 {
			b.Fatal(k, err)
		}
		if _, err := r.Read(out); err != io.EOF {
			b.Fatal(err)
		}
		r.Close()
	}
}

// BenchmarkDeleteLargeThenHas deletes one body of six chunks (as garbage
// collection does after expunges) and then looks up another, as a
// delivery or a FETCH would. ns/op is for the pair (the delete is
// synced), has-µs the lookup alone, which stays flat only if deletes
// leave no range tombstones for lookups to re-sort.
func BenchmarkDeleteLargeThenHas(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b, Options{ChunkSize: 4096, Logger: slog.New(slog.DiscardHandler)})
	buf := payload(24<<10, 5)
	next := uint64(0)
	fill := func(n int) []Hash {
		hs := make([]Hash, n)
		for i := range hs {
			next++
			h, _, err := s.Put(ctx, bytes.NewReader(uniqueBody(buf, next)), nil)
			if err != nil {
				b.Fatal(err)
			}
			hs[i] = h
		}
		return hs
	}
	probe := fill(1)[0]
	var doomed []Hash
	var lookups time.Duration
	for b.Loop() {
		if len(doomed) == 0 {
			b.StopTimer()
			doomed = fill(2000)
			b.StartTimer()
		}
		if err := s.Delete(ctx, doomed[0]); err != nil {
			b.Fatal(err)
		}
		doomed = doomed[1:]
		start := time.Now()
		if ok, _, err := s.Has(ctx, probe); !ok || err != nil {
			b.Fatal("probe missing", err)
		}
		lookups += time.Since(start)
	}
	b.ReportMetric(float64(lookups.Microseconds())/float64(b.N), "has-µs")
}
