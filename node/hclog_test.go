package node

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Raft's own lines come out through the node's logger, in its format:
// a text logger gets text lines, not hclog's JSON.
func TestRaftLogsThroughTheNodeLogger(t *testing.T) {
	var buf syncBuffer
	newTestClusterWith(t, 1, func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}).leader(5 * time.Second)
	// A new single node waits a heartbeat timeout before its first
	// election, and raft warns of it.
	want := `level=WARN msg="heartbeat timeout reached, starting election" node=n1 module=raft `
	waitFor(t, 5*time.Second, "raft's warning", func() bool { return strings.Contains(buf.String(), want) })
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.HasPrefix(l, "time=") {
			t.Errorf("a line not in the node's text format: %s", l)
		}
	}
}

// Named parts, implied arguments and hclog.Fmt values come out as slog
// attributes; lines under the level are dropped.
func TestRaftLoggerAttributes(t *testing.T) {
	var buf syncBuffer
	l := newRaftLogger(slog.New(slog.NewTextHandler(&buf, nil)).With("node", "n1"))
	l.Info("not shown")
	l.Named("snapshot").With("id", "1-2-3").Warn("restoring", "received", hclog.Fmt("%d / %d", 5, 10))
	got := buf.String()
	if strings.Contains(got, "not shown") || !strings.Contains(got, `level=WARN msg=restoring node=n1 module=raft.snapshot id=1-2-3 received="5 / 10"`) {
		t.Fatalf("got %q", got)
	}
	if l.IsInfo() || !l.IsWarn() {
		t.Errorf("IsInfo %v, IsWarn %v at the default level", l.IsInfo(), l.IsWarn())
	}
}
