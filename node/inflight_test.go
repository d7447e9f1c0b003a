package node

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// closeAndWait waits for a request in progress, and a request after it
// is refused instead of reaching the handler.
func TestInflightWaitsThenRefuses(t *testing.T) {
	var f inflight
	entered, release := make(chan struct{}), make(chan struct{})
	reached := 0
	h := f.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached++
		close(entered)
		<-release
	}))
	done := make(chan struct{})
	go func() {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		close(done)
	}()
	<-entered
	if f.closeAndWait(100 * time.Millisecond) {
		t.Fatal("closeAndWait returned true with a request still running")
	}
	close(release)
	<-done
	if !f.closeAndWait(time.Second) {
		t.Fatal("closeAndWait timed out after the request ended")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusServiceUnavailable || reached != 1 {
		t.Fatalf("after close: %d, handler reached %d times", rec.Code, reached)
	}
}
