package storage

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
)

// TestReopenWhileReaderSeeks: a Reader opened before a failure may be
// sought by its owner (an IMAP partial FETCH) while Reopen, on another
// goroutine, ends it. Reopen touches nothing that Seek touches, so under
// -race the two do not race, and the Reader still ends with ErrFailed.
func TestReopenWhileReaderSeeks(t *testing.T) {
	ctx := context.Background()
	tog, fs := walFaultFS(syncOps...)
	opts := testOptions()
	opts.FS = fs
	s, _ := newStore(t, opts)
	h := mustPut(t, s, payload(9000, 1))
	rd, err := s.Reader(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if _, err := io.ReadFull(rd, make([]byte, 1500)); err != nil {
		t.Fatal(err)
	}
	failStore(t, s, tog, 2)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := rd.Seek(i%2*3000, io.SeekStart); err != nil {
				t.Error(err)
				return
			}
		}
	})
	err = s.Reopen(ctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rd); !errors.Is(err, ErrFailed) {
		t.Fatalf("Reader sought across the reopen: %v, want ErrFailed", err)
	}
}
