package storage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// gatedWALWriteFS returns an FS whose next WAL write, once armed, signals
// on entered and then waits for release to send its result: a write
// that fails there never reaches the file. Closing stop lets a waiting
// write fail.
func gatedWALWriteFS(stop <-chan struct{}) (arm func(), entered <-chan struct{}, release chan<- error, fs vfs.FS) {
	var armed atomic.Bool
	ent := make(chan struct{}, 1)
	rel := make(chan error)
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".log") || !slices.Contains([]errorfs.OpKind{errorfs.OpFileWrite}, op.Kind) || !armed.CompareAndSwap(true, false) {
			return nil
		}
		ent <- struct{}{}
		select {
		case err := <-rel:
			return err
		case <-stop:
			return errorfs.ErrInjected
		}
	})
	return func() { armed.Store(true) }, ent, rel, errorfs.Wrap(vfs.Default, inj)
}

// TestReopenAfterALostDelete: a Delete whose WAL write fails is visible
// in Pebble until the failure (Pebble publishes a batch before its WAL
// write and sync end), so a presence rebuild may drop the hash from the
// filter meanwhile; after Reopen the manifest is back, since the delete
// never reached the log. The filter must still say the body may be
// there: otherwise a Commit of the same body takes it for absent,
// overwrites its manifest, leaks the old chunks for good and counts the
// body twice.
func TestReopenAfterALostDelete(t *testing.T) {
	ctx := context.Background()
	stop := make(chan struct{})
	arm, entered, release, fs := gatedWALWriteFS(stop)
	opts := testOptions()
	opts.FS = fs
	s, _ := newStore(t, opts)
	t.Cleanup(func() { close(stop) })
	data := payload(3000, 1)
	h := mustPut(t, s, data)
	mustPut(t, s, payload(3000, 2))
	waitPresence(t, s)

	arm()
	deleted := make(chan error, 1)
	go func() { deleted <- s.Delete(ctx, h) }()
	select { // the deletion is applied in memory, its WAL write pending
	case <-entered:
	case err := <-deleted:
		t.Fatalf("Delete returned (%v) without a WAL write", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no WAL write within 10s of Delete")
	}
	if _, ok, _ := s.get(manifestKey(h)); ok {
		t.Skip("pebble did not expose the unsynced deletion; nothing to rebuild around")
	}
	s.rebuildPresence() // sees the deletion, and installs a filter without h
	release <- errorfs.ErrInjected
	if err := <-deleted; !errors.Is(err, ErrFailed) {
		t.Fatalf("Delete with a failed WAL write: %v, want ErrFailed", err)
	}
	if !s.pres.mayHave(h) {
		t.Fatal("after a failed Delete the presence filter says the body surely is not stored")
	}

	if err := s.Reopen(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _, err := s.Has(ctx, h); err != nil || !ok {
		t.Fatalf("body whose deletion was lost, after Reopen: %v, %v; want it back", ok, err)
	}
	mustPut(t, s, data) // a duplicate: it must find the stored copy
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := countKeys(t, s, tagManifest); st.Bodies != int64(m) || m != 2 {
		t.Fatalf("Stats.Bodies %d, %d manifests; want 2 and 2", st.Bodies, m)
	}
	if c := countKeys(t, s, tagChunk); c != 2*3 {
		t.Fatalf("%d chunk keys for two bodies of 3 chunks", c)
	}
}
