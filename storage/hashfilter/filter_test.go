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
	// A few of the n were false positives and not counted, so it fills
	// a few more hashes past capacity, not many.
	extra := 0
	for !f.Add(hashOf(2*n + extra)) {
		if extra++; extra > n/20 {
			t.Fatalf("not full after %d hashes past capacity %d", extra, n)
		}
	}
}

// Adding the same hashes again does not count towards capacity: a body
// record rewritten on every delivery must not make its filter grow.
func TestFilterCountsDistinctHashes(t *testing.T) {
	f := New(100)
	for range 50 {
		for i := range 10 {
			if f.Add(hashOf(i)) {
				t.Fatal("filter full after 10 distinct hashes")
			}
		}
	}
	if c := f.Count(); c != 10 {
		t.Fatalf("Count = %d after 10 distinct hashes added 50 times each, want 10", c)
	}
}

func BenchmarkHas(b *testing.B) {
	f := New(1 << 20)
	h := hashOf(1)
	for b.Loop() {
		f.Has(h)
	}
}
