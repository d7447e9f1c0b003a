package node

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A response that stops arriving, before its header or in its body, is
// given up after the idle time; one that keeps coming slowly is not.
func TestStallGuard(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/silent":
			<-release
			return
		case "/stops":
			w.Write([]byte("some"))
			w.(http.Flusher).Flush()
			<-release
		case "/slow":
			for range 8 {
				w.Write([]byte("x"))
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
		}
	}))
	defer srv.Close()
	defer close(release) // first: Close waits for the handlers
	const idle = 200 * time.Millisecond
	get := func(path string) (string, error) {
		ctx, guard := newStallGuard(ctxT(t, 10*time.Second), idle)
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
		resp, err := srv.Client().Do(req)
		if err != nil {
			guard.Close()
			return "", guard.explain(err)
		}
		body := guard.wrap(resp.Body)
		defer body.Close()
		got, err := io.ReadAll(body)
		return string(got), err
	}
	for _, path := range []string{"/silent", "/stops"} {
		start := time.Now()
		_, err := get(path)
		if !errors.Is(err, errReplicaTimeout) {
			t.Errorf("%s: %v, want the replica timeout", path, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: given up after %v", path, took)
		}
	}
	// 400 ms in all, never 200 ms without a byte.
	if got, err := get("/slow"); err != nil || got != "xxxxxxxx" {
		t.Errorf("/slow: %q, %v", got, err)
	}
}
