package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

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
	arm, entered, release, fs := gatedWALFS(stop, errorfs.OpFileWrite)
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
