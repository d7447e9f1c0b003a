package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestBodyStoreReopenFlag: --body-store-reopen-interval reaches the
// node, its 0 turns the reopening off (the node's own zero would be the
// default), and a negative one or one under a second (a busy loop of
// reopens) is refused before anything starts.
func TestBodyStoreReopenFlag(t *testing.T) {
	for flag, want := range map[time.Duration]time.Duration{45 * time.Second: 45 * time.Second, 0: -1} {
		f := &serverFlags{id: "n1", data: t.TempDir(), bodyStoreReopen: flag}
		f.queue.register(pflag.NewFlagSet("queue", pflag.ContinueOnError)) // its defaults
		cfg, err := f.nodeConfig([]byte("0123456789abcdef"), 0, tlsSet{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.BodyStoreReopenInterval != want {
			t.Errorf("--body-store-reopen-interval %v: node gets %v, want %v", flag, cfg.BodyStoreReopenInterval, want)
		}
	}
	for _, bad := range []string{"-1s", "1ms"} {
		_, stderr, err := cli(t, "", "server", "--id", "n1", "--data", t.TempDir(), "--body-store-reopen-interval", bad)
		if err == nil || !strings.Contains(stderr, "--body-store-reopen-interval "+bad+": must be 0 (never) or at least 1s") {
			t.Fatalf("interval %s: err %v, stderr %q", bad, err, stderr)
		}
	}
}
