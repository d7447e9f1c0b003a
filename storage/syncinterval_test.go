package storage

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// walSyncCounter returns an FS over the real disk that counts the syncs
// of Pebble's WAL files.
func walSyncCounter() (*atomic.Int64, vfs.FS) {
	var n atomic.Int64
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".log") {
			switch op.Kind {
			case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
				n.Add(1)
			}
		}
		return nil
	})
	return &n, errorfs.Wrap(vfs.Default, inj)
}

// TestSyncIntervalSharesSyncs checks Options.SyncInterval: concurrent
// commits share a sync instead of each getting its own, and yet each
// commit returns only after a sync that started after it.
func TestSyncIntervalSharesSyncs(t *testing.T) {
	const interval = 40 * time.Millisecond
	syncs, fs := walSyncCounter()
	opts := testOptions()
	opts.FS, opts.SyncInterval = fs, interval
	s, _ := newStore(t, opts)

	// One writer: every commit waits for a sync of its own, and a sync
	// follows the previous one by at least the interval.
	start := time.Now()
	for i := range 4 {
		before := syncs.Load()
		mustPut(t, s, payload(300, uint64(i)))
		if syncs.Load() == before {
			t.Fatalf("Put %d returned without a WAL sync", i)
		}
	}
	if took := time.Since(start); took < 3*interval {
		t.Fatalf("4 sequential commits took %v, want at least %v apart", took, interval)
	}

	// Many writers: they share syncs.
	const writers, each = 16, 4
	before := syncs.Load()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, _, err := s.Put(context.Background(), strings.NewReader(string(payload(300, uint64(100+w*each+i)))), nil); err != nil {
					t.Errorf("Put: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got := syncs.Load() - before; got > writers*each/4 {
		t.Fatalf("%d concurrent commits made %d WAL syncs, want at most %d", writers*each, got, writers*each/4)
	}
}

// TestSyncIntervalOffSyncsEachCommit is the control: without an interval
// a lone writer's commits are not held back.
func TestSyncIntervalOffSyncsEachCommit(t *testing.T) {
	syncs, fs := walSyncCounter()
	opts := testOptions()
	opts.FS = fs
	s, _ := newStore(t, opts)
	before := syncs.Load()
	for i := range 8 {
		mustPut(t, s, payload(300, uint64(i)))
	}
	if got := syncs.Load() - before; got < 8 {
		t.Fatalf("8 sequential commits made %d WAL syncs, want one each", got)
	}
}

func TestSyncIntervalBounds(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, MaxSyncInterval + 1} {
		opts := testOptions()
		opts.SyncInterval = d
		_, err := Open(context.Background(), t.TempDir(), opts)
		wantErrIs(t, err, ErrInvalidOptions)
	}
}
