package fsm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// lockedBuffer is a log sink that tests may read while Pebble writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStateStoreLogsBackgroundErrors: a flush of the state's memtable
// that fails (here: no space for the new table file) is retried by Pebble
// in the background and reported only through its logger. The state's
// logger used to drop those errors, so an operator saw nothing of a
// state store failing on a full disk until writes stalled.
func TestStateStoreLogsBackgroundErrors(t *testing.T) {
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".sst") && op.Kind == errorfs.OpCreate {
			return fmt.Errorf("create %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})
	tog := &errorfs.Toggle{Injector: inj}
	var logs lockedBuffer
	s, err := Open(t.TempDir(), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), fs: errorfs.Wrap(vfs.Default, tog)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 100 {
		if err := s.db.Set(fmt.Appendf(nil, "test-key-%d", i), []byte("value"), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	tog.On()
	flushed, err := s.db.AsyncFlush()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for !strings.Contains(logs.String(), "no space left on device") {
		select {
		case <-ctx.Done():
			t.Fatalf("the failed flush was not logged; the log holds:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	tog.Off()
	select {
	case <-flushed:
	case <-ctx.Done():
		t.Fatal("the flush did not complete once space was back")
	}
}
