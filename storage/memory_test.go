package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"runtime"
	"runtime/debug"
	"testing"
)

// TestLargeBodyStreamsInBoundedMemory writes a 50 MiB body in 1 MiB pieces
// and checks that the Writer never holds more than one chunk and that the
// Go heap never grows by anything near the body size. It then streams the
// body back and checks its hash.
func TestLargeBodyStreamsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 50 MiB")
	}
	const (
		bodySize = 50 << 20
		piece    = 1 << 20
		maxGrow  = 20 << 20 // the body is 50 MiB
	)
	opts := testOptions()
	opts.ChunkSize = DefaultChunkSize
	opts.MemTableSize = 4 << 20
	s, _ := newStore(t, opts)
	ctx := context.Background()

	defer debug.SetGCPercent(debug.SetGCPercent(25)) // keep HeapInuse near live memory
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse

	w := s.NewWriter(ctx)
	defer w.Abort()
	sum := sha256.New()
	buf := make([]byte, piece)
	var bufStart *byte
	for i := range bodySize / piece {
		for j := range buf {
			buf[j] = byte(i*31 + j*7 + j>>8)
		}
		sum.Write(buf)
		if _, err := w.Write(buf); err != nil {
			t.Fatal(err)
		}
		if cap(w.buf) != DefaultChunkSize {
			t.Fatalf("writer buffer capacity %d, want one chunk (%d)", cap(w.buf), DefaultChunkSize)
		}
		if bufStart == nil {
			bufStart = &w.buf[:1][0]
		} else if &w.buf[:1][0] != bufStart {
			t.Fatal("writer reallocated its chunk buffer")
		}
		if want := uint32(int64(i+1) * piece / DefaultChunkSize); w.spilled < want-1 {
			t.Fatalf("after %d MiB only %d chunks spilled", i+1, w.spilled)
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	want := Hash(sum.Sum(nil))
	h, n, err := w.Commit(ctx, &want)
	if err != nil || h != want || n != bodySize {
		t.Fatalf("Commit = %s, %d, %v", h, n, err)
	}
	if grow := int64(peak) - int64(base); grow > maxGrow {
		t.Fatalf("heap in use grew by %d MiB while writing a 50 MiB body", grow>>20)
	} else {
		t.Logf("heap in use grew by at most %.1f MiB", float64(grow)/(1<<20))
	}

	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak = ms.HeapInuse, ms.HeapInuse
	r, err := s.Reader(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var total int64
	for {
		k, err := r.Read(buf)
		total += int64(k)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read: %v", err)
			}
			break
		}
		if total%(8<<20) == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if total != bodySize {
		t.Fatalf("read %d bytes", total)
	}
	if grow := int64(peak) - int64(base); grow > maxGrow {
		t.Fatalf("heap in use grew by %d MiB while reading", grow>>20)
	}
}
