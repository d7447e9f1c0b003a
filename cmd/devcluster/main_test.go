package main

import "testing"

// The help printed at start named `make stop` whatever --dir was: for a
// cluster started elsewhere (a benchmark's, a second one beside make
// run), that stops the one in run/, and leaves this one running.
func TestStopHintNamesTheDir(t *testing.T) {
	for dir, want := range map[string]string{
		"run":           "make stop",
		"/tmp/bench":    "bin/devcluster --dir /tmp/bench stop",
		"my dir/x":      "bin/devcluster --dir 'my dir/x' stop",
		"/tmp/it's-odd": `bin/devcluster --dir '/tmp/it'\''s-odd' stop`,
	} {
		if got := stopHint(dir); got != want {
			t.Errorf("stopHint(%q) = %q, want %q", dir, got, want)
		}
	}
}
