package storage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// failStore fails s by a commit whose WAL fsync fails (tog must inject
// fsync errors while on), and leaves the injection off again.
func failStore(t *testing.T, s *Store, tog *errorfs.Toggle, seed uint64) Hash {
	t.Helper()
	data := payload(5000, seed)
	tog.On()
	_, _, err := s.Put(context.Background(), bytes.NewReader(data), nil)
	tog.Off()
	if !errors.Is(err, ErrFailed) || s.Failed() == nil {
		t.Fatalf("Put under a failing fsync: %v (failed: %v), want ErrFailed", err, s.Failed())
	}
	return HashBytes(data)
}

// wantIntact reads every body in acked back, whole, and compares it
// byte for byte with what was acknowledged.
func wantIntact(t *testing.T, s *Store, acked map[Hash][]byte) {
	t.Helper()
	for h, data := range acked {
		got, err := readBody(s, h)
		if err != nil || !bytes.Equal(got, data) || HashBytes(got) != h {
			t.Fatalf("acknowledged body %s after reopen: %d of %d bytes, %v", h, len(got), len(data), err)
		}
		if err := s.Verify(context.Background(), h); err != nil {
			t.Fatalf("verify %s after reopen: %v", h, err)
		}
	}
}

// TestReopenAfterFailedFsync: a store failed by a WAL fsync error comes
// back with Reopen, without a new process: acknowledged bodies read back
// intact, the Reader and the Writer that were open across the failure
// end with ErrFailed instead of touching the closed database, the
// failed write's leftovers are gone and the counters match the
// manifests. A reopen is refused while the reserve is not free, and
// fails (the store staying failed) while Pebble cannot open.
func TestReopenAfterFailedFsync(t *testing.T) {
	ctx := context.Background()
	tog, fs := walFaultFS(syncOps...)
	// Pebble cannot open while its directory lock fails.
	lockTog := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpLock {
			return errorfs.ErrInjected
		}
		return nil
	})}
	ufs := &usageFS{FS: errorfs.Wrap(fs, lockTog)}
	ufs.avail.Store(1 << 40)
	opts := testOptions()
	opts.FS = ufs
	opts.MinFreeBytes = 1 << 20
	s, _ := newStore(t, opts)
	if err := s.Reopen(ctx); err != nil {
		t.Fatalf("Reopen of a working store: %v", err)
	}

	acked := map[Hash][]byte{}
	for i, n := range []int{300, 1024, 5000, 9000} {
		data := payload(n, uint64(10+i))
		acked[mustPut(t, s, data)] = data
	}
	var big Hash
	for h, d := range acked {
		if len(d) == 9000 {
			big = h
		}
	}
	rd, err := s.Reader(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rd, make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	w := s.NewWriter(ctx) // spills chunks before the failure
	if _, err := w.Write(payload(3000, 99)); err != nil {
		t.Fatal(err)
	}
	defer w.Abort()

	lost := failStore(t, s, tog, 50)

	ufs.avail.Store(1 << 10) // below the reserve
	if err := s.Reopen(ctx); !errors.Is(err, ErrNoSpace) || s.Failed() == nil {
		t.Fatalf("Reopen below the reserve: %v (failed: %v), want ErrNoSpace and still failed", err, s.Failed())
	}
	ufs.avail.Store(1 << 40)
	lockTog.On()
	if err := s.Reopen(ctx); !errors.Is(err, errorfs.ErrInjected) || s.Failed() == nil {
		t.Fatalf("Reopen while Pebble cannot open: %v (failed: %v), want the injected error and still failed", err, s.Failed())
	}
	if _, _, err := s.Has(ctx, big); !errors.Is(err, ErrFailed) {
		t.Fatalf("Has after a failed reopen: %v", err)
	}
	lockTog.Off()
	if err := s.Reopen(ctx); err != nil {
		t.Fatalf("Reopen once the disk works: %v", err)
	}
	if err := s.Failed(); err != nil {
		t.Fatalf("still failed after Reopen: %v", err)
	}

	if _, err := io.ReadAll(rd); !errors.Is(err, ErrFailed) {
		t.Fatalf("Reader open across the reopen: %v, want ErrFailed", err)
	}
	if err := rd.Close(); err != nil {
		t.Fatalf("close a Reader ended by the reopen: %v", err)
	}
	if _, err := w.Write(payload(3000, 98)); !errors.Is(err, ErrFailed) {
		t.Fatalf("Write of a Writer begun before the reopen: %v, want ErrFailed", err)
	}
	if _, _, err := w.Commit(ctx, nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit of a Writer begun before the reopen: %v, want ErrFailed", err)
	}

	wantIntact(t, s, acked)
	present, _, err := s.Has(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	if present {
		if err := s.Verify(ctx, lost); err != nil {
			t.Fatalf("unacknowledged body present but damaged: %v", err)
		}
	}
	if p := countKeys(t, s, tagPending); p != 0 {
		t.Fatalf("%d pending markers after reopen, want 0", p)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := countKeys(t, s, tagManifest); st.Bodies != int64(m) {
		t.Fatalf("Stats.Bodies %d after reopen, %d manifests", st.Bodies, m)
	}

	// The store takes new bodies again, and they survive a real restart.
	data := payload(7000, 60)
	acked[mustPut(t, s, data)] = data
	dir := s.dir
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	opts.FS = vfs.Default
	s2 := openStore(t, dir, opts)
	defer s2.Close()
	wantIntact(t, s2, acked)
}

// TestReopenUnderLoad fails and reopens a store several times while
// writers, readers and a listing run against it (go test -race): nobody
// may crash or read a closed database, every error is the store's
// failure, and every acknowledged body reads back intact at the end.
func TestReopenUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fault cycles under load")
	}
	ctx := context.Background()
	tog, fs := walFaultFS(syncOps...)
	opts := testOptions()
	opts.FS = fs
	s, _ := newStore(t, opts)

	var mu sync.Mutex
	acked := map[Hash][]byte{}
	ackedList := []Hash{}
	stop := make(chan struct{})
	var unexpected atomic.Pointer[error]
	check := func(what string, err error) {
		if err != nil && !errors.Is(err, ErrFailed) {
			err = errors.Join(errors.New(what), err)
			unexpected.CompareAndSwap(nil, &err)
		}
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := uint64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := payload(200+int((i*7919+uint64(g)*31)%6000), uint64(g)<<32|i)
				h, _, err := s.Put(ctx, bytes.NewReader(data), nil)
				check("put", err)
				if err == nil {
					mu.Lock()
					acked[h] = data
					ackedList = append(ackedList, h)
					mu.Unlock()
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				var h Hash
				var want []byte
				if len(ackedList) > 0 {
					h = ackedList[rand.IntN(len(ackedList))]
					want = acked[h]
				}
				mu.Unlock()
				if want == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				got, err := readBody(s, h)
				check("read", err)
				if err == nil && !bytes.Equal(got, want) {
					err := errors.New("read back different bytes")
					unexpected.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, err := range s.Bodies(ctx, Hash{}) {
				check("list", err)
			}
		}
	})

	for cycle := range 3 {
		time.Sleep(100 * time.Millisecond)
		tog.On()
		deadline := time.Now().Add(10 * time.Second)
		for s.Failed() == nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		tog.Off()
		if s.Failed() == nil {
			t.Fatalf("cycle %d: no commit met the injected fsync error", cycle)
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := s.Reopen(rctx)
		cancel()
		if err != nil {
			t.Fatalf("cycle %d: Reopen: %v", cycle, err)
		}
	}
	time.Sleep(30 * time.Millisecond)
	close(stop)
	wg.Wait()
	if p := unexpected.Load(); p != nil {
		t.Fatal(*p)
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	wantIntact(t, s, acked)
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := countKeys(t, s, tagManifest); st.Bodies != int64(m) {
		t.Fatalf("Stats.Bodies %d, %d manifests", st.Bodies, m)
	}
	if p := countKeys(t, s, tagPending); p != 0 {
		t.Fatalf("%d pending markers with no Writer left", p)
	}
	t.Logf("%d bodies acknowledged over 3 failures", len(acked))
}
