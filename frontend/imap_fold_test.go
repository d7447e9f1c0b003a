package frontend

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestIMAPFoldLongMarkRun: a letter with more combining marks after it
// than fit the room first made for the output is folded in full, as the
// whole-text reference folds it, and in bounded time: the transformers
// hold back such a segment until all of it fits, so the output must
// grow past the room it already has (growing by what input was left,
// none, spun for ever on the key or header value that held it).
func TestIMAPFoldLongMarkRun(t *testing.T) {
	for _, s := range []string{
		"a" + strings.Repeat("\u0344", 12),
		"Zo" + strings.Repeat("\u0301\u0327", 20) + " x",
		strings.Repeat("e"+strings.Repeat("\u0344", 40), 3),
	} {
		done := make(chan []byte, 1)
		go func() { done <- imapFold(nil, []byte(s)) }()
		select {
		case got := <-done:
			if want := refFold([]byte(s)); !bytes.Equal(got, want) {
				t.Errorf("fold %q = %q, want %q", s, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fold %q did not end", s)
		}
	}
}
