package storage

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
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
//
// One window is left (storage/DESIGN.md, Not yet): a spill that rotates
// the WAL just as a write fails meets Pebble's own fatal error in
// rotateWAL, which ends the process (a few runs in a hundred here). So
// the scenario runs in a child process: it either ends the Put with
// ErrFailed and reopens (checked there), or dies in Pebble; then the
// parent opens the store from disk and every acknowledged body must be
// intact, as after any crash.
func TestLongBodyOnAFailingWAL(t *testing.T) {
	if dir := os.Getenv("POWERMAIL_WAL_CHILD_DIR"); dir != "" {
		longBodyOnAFailingWAL(t, dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLongBodyOnAFailingWAL$", "-test.count=1")
	cmd.Env = append(os.Environ(), "POWERMAIL_WAL_CHILD_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if !bytes.Contains(out, []byte("cockroachdb/pebble")) || bytes.Contains(out, []byte("--- FAIL")) {
			t.Fatalf("the child failed, not in Pebble: %v\n%s", err, out)
		}
		t.Logf("the child died in Pebble (the window left open): %v", err)
	}
	s := openStore(t, dir, testOptions())
	defer s.Close()
	want := map[Hash][]byte{}
	for _, data := range longBodyAcked {
		want[HashBytes(data)] = data
	}
	if err != nil {
		want = map[Hash][]byte{HashBytes(longBodyAcked[0]): longBodyAcked[0]} // acknowledged before the fault
	}
	wantIntact(t, s, want)
}

// longBodyAcked are the bodies the child acknowledges: the first before
// the fault, the second after the reopen.
var longBodyAcked = [][]byte{payload(3000, 1), payload(200_000, 3)}

func longBodyOnAFailingWAL(t *testing.T, dir string) {
	ctx := context.Background()
	tog, fs := walFaultFS(errorfs.OpFileWrite)
	opts := testOptions()
	opts.FS = fs
	s := openStore(t, dir, opts)
	acked := map[Hash][]byte{}
	data := longBodyAcked[0]
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
	data = longBodyAcked[1]
	acked[mustPut(t, s, data)] = data
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	opts.FS = vfs.Default
	s2 := openStore(t, dir, opts)
	defer s2.Close()
	wantIntact(t, s2, acked)
}
