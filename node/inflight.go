package node

import (
	"net/http"
	"sync"
	"time"
)

// inflight counts the HTTP requests (cluster RPC and admin API) being
// served, so that Close waits for them before it closes the stores they
// read: closing a server's connections does not wait for its handlers,
// and a handler that then reads a closed Pebble panics, or leaves an
// iterator that fails the store's Close.
type inflight struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// wrap counts h's requests; once closing, new ones get 503.
func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			http.Error(w, "node shutting down", http.StatusServiceUnavailable)
			return
		}
		f.wg.Add(1)
		f.mu.Unlock()
		defer f.wg.Done()
		h.ServeHTTP(w, r)
	})
}

// closeAndWait refuses new requests and waits up to d for those in
// progress; it reports whether they all ended.
func (f *inflight) closeAndWait(d time.Duration) bool {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}
