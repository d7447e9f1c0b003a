package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// lostStress is the shared state of TestReclaimLostChunksUnderConcurrentWrites:
// the bodies committed and not deleted, by hash, with their contents.
type lostStress struct {
	s    *Store
	mu   sync.Mutex
	live map[Hash][]byte
	seed atomic.Uint64
}

func (st *lostStress) put(ctx context.Context, data []byte) error {
	h, _, err := st.s.Put(ctx, bytes.NewReader(data), nil)
	if err != nil {
		return fmt.Errorf("put %d bytes: %w", len(data), err)
	}
	st.mu.Lock()
	st.live[h] = data
	st.mu.Unlock()
	return nil
}

// takeOne removes a live body from the map, for its caller to delete.
func (st *lostStress) takeOne(r *rand.Rand) (Hash, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := r.IntN(len(st.live) + 1)
	for h := range st.live {
		if n--; n <= 0 {
			delete(st.live, h)
			return h, true
		}
	}
	return Hash{}, false
}

// anyOne returns a live body's contents, for a duplicate write.
func (st *lostStress) anyOne() ([]byte, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, data := range st.live {
		return data, true
	}
	return nil, false
}

// lose commits a body, breaks its manifest and deletes it, which leaves
// its chunks lost.
func (st *lostStress) lose(ctx context.Context, data []byte) error {
	h, _, err := st.s.Put(ctx, bytes.NewReader(data), nil)
	if err != nil {
		return err
	}
	release, err := st.s.enterHash(ctx, h)
	if err != nil {
		return err
	}
	v, ok, err := st.s.get(manifestKey(h))
	if err == nil && ok {
		v = bytes.Clone(v)
		v[2] ^= 1
		err = st.s.db.Set(manifestKey(h), v, pebble.Sync)
	}
	release()
	if err != nil || !ok {
		return fmt.Errorf("break manifest of %s: ok=%v: %w", h, ok, err)
	}
	return st.s.Delete(ctx, h)
}

// step does one random operation: a new body, a duplicate, a delete, a
// loss, or a write that stays open with spilled chunks while others run.
func (st *lostStress) step(ctx context.Context, r *rand.Rand) error {
	data := payload(r.IntN(5000), st.seed.Add(1))
	switch op := r.IntN(10); {
	case op < 4:
		return st.put(ctx, data)
	case op < 5:
		if dup, ok := st.anyOne(); ok {
			return st.put(ctx, dup)
		}
		return nil
	case op < 7:
		if h, ok := st.takeOne(r); ok {
			return st.s.Delete(ctx, h)
		}
		return nil
	case op < 8:
		return st.lose(ctx, data)
	default:
		w := st.s.NewWriter(ctx)
		defer w.Abort()
		for i := 0; i < len(data); i += 700 {
			if _, err := w.Write(data[i:min(i+700, len(data))]); err != nil {
				return err
			}
			if r.IntN(2) == 0 {
				runtime.Gosched()
			}
		}
		if r.IntN(3) == 0 {
			return nil // aborted
		}
		h, _, err := w.Commit(ctx, nil)
		if err != nil {
			return err
		}
		st.mu.Lock()
		st.live[h] = data
		st.mu.Unlock()
		return nil
	}
}

// Reclaims run while bodies are committed, written again, deleted and
// lost, and writes stand open with spilled chunks: no live body loses a
// chunk, every lost chunk goes in the end, and the counters equal what
// the manifests add up to, in memory and after a restart.
func TestReclaimLostChunksUnderConcurrentWrites(t *testing.T) {
	s, dir := newStore(t, testOptions())
	ctx := context.Background()
	st := &lostStress{s: s, live: make(map[Hash][]byte)}
	const workers, steps = 4, 150

	var reclaims, lostWrites atomic.Int64
	stop := make(chan struct{})
	reclaimErr := make(chan error, 1)
	go func() {
		defer close(reclaimErr)
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := s.ReclaimLostChunks(ctx)
			if err != nil {
				reclaimErr <- err
				return
			}
			reclaims.Add(1)
			lostWrites.Add(int64(got.Writes))
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 42))
			for range steps {
				if err := st.step(ctx, r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := <-reclaimErr; err != nil {
		t.Fatalf("reclaim under load: %v", err)
	}
	t.Logf("%d reclaims ran beside %d steps, reclaiming %d writes", reclaims.Load(), workers*steps, lostWrites.Load())

	if _, err := s.ReclaimLostChunks(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.get(keyLostChunks); err != nil || ok {
		t.Fatalf("mark after the last reclaim: present=%v, %v", ok, err)
	}
	for h, data := range st.live {
		if got, err := readBody(s, h); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("live body %s after the reclaims: %v", h, err)
		}
	}
	bodies, n, chunks := manifestTotals(t, s)
	if bodies != int64(len(st.live)) {
		t.Fatalf("%d manifests, want %d live bodies", bodies, len(st.live))
	}
	if got := countKeys(t, s, tagChunk); got != chunks {
		t.Fatalf("%d chunk keys, the manifests name %d", got, chunks)
	}
	if got := countKeys(t, s, tagPending); got != 0 {
		t.Fatalf("%d pending markers left", got)
	}
	wantStats(t, s, bodies, n)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, testOptions())
	defer s.Close()
	wantStats(t, s, bodies, n)
}

// manifestTotals adds up the manifests: bodies, bytes and chunks.
func manifestTotals(t *testing.T, s *Store) (bodies, n int64, chunks int) {
	t.Helper()
	lo, hi := tagSpan(tagManifest)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		h, _ := parseManifestKey(it.Key())
		m, err := decodeManifest(h, it.Value())
		if err != nil {
			t.Fatal(err)
		}
		bodies++
		n += m.size
		chunks += int(m.chunks())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		t.Fatal(err)
	}
	return bodies, n, chunks
}
