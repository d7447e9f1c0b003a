package hashfilter

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"
)

func hashOf(i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

// Every added hash is found, including under concurrent adds, and at
// capacity about 1% of other hashes are false positives.
func TestFilter(t *testing.T) {
	const n = 20000
	f := New(n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				f.Add(hashOf(i))
			}
		})
	}
	wg.Wait()
	for i := range n {
		if !f.Has(hashOf(i)) {
			t.Fatalf("added hash %d not found", i)
		}
	}
	fp := 0
	for i := n; i < 2*n; i++ {
		if f.Has(hashOf(i)) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.02 {
		t.Fatalf("false positive rate %.4f at capacity, want about 0.01", rate)
	}
	if f.Add(hashOf(0)) != true {
		t.Fatal("Add past capacity did not report full")
	}
}

func BenchmarkHas(b *testing.B) {
	f := New(1 << 20)
	h := hashOf(1)
	for b.Loop() {
		f.Has(h)
	}
}
