package storage

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestLongBodyOnAFailingWAL: a body streamed while the WAL's writes
// fail (a disk that fills from elsewhere) spills chunks unsynced, so no
// commit waits for the failed write and Pebble keeps the error in its
// log writer; the commit after next used to meet it as a raw panic,
// raised with Pebble's commit pipeline locked: the Writer's Abort then
// waited for that lock for ever (or the process crashed). The store must
// fail at the first failed write instead, end the Put with ErrFailed,
// and reopen once the disk works.
func TestLongBodyOnAFailingWAL(t *testing.T) {
	ctx := context.Background()
	tog, fs := walFaultFS(errorfs.OpFileWrite)
	opts := testOptions()
	opts.FS = fs
	s, dir := newStore(t, opts)
	acked := map[Hash][]byte{}
	data := payload(3000, 1)
	acked[mustPut(t, s, data)] = data

	tog.On()
	put := make(chan error, 1)
	go func() {
		_, _, err := s.Put(ctx, bytes.NewReader(payload(400_000, 2)), nil)
		put <- err
	}()
	select {
	case err := <-put:
		if !errors.Is(err, ErrFailed) || s.Failed() == nil {
			t.Fatalf("Put of a long body on a failing WAL: %v (failed: %v), want ErrFailed", err, s.Failed())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Put of a long body on a failing WAL still hangs after 20s")
	}
	tog.Off()
	if err := s.Reopen(ctx); err != nil {
		t.Fatalf("Reopen once the disk works: %v", err)
	}
	wantIntact(t, s, acked)
	data = payload(200_000, 3)
	acked[mustPut(t, s, data)] = data
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	opts.FS = vfs.Default
	s2 := openStore(t, dir, opts)
	defer s2.Close()
	wantIntact(t, s2, acked)
}
