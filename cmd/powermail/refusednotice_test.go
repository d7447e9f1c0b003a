package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"powermail/node"
)

// TestRefusedNoticeTimeoutFlag: --smtp-refused-notice-timeout reaches
// the node (its 0 is the node's default), and a negative one, one under
// a second or one past the node's most are refused before anything
// starts.
func TestRefusedNoticeTimeoutFlag(t *testing.T) {
	for _, d := range []time.Duration{45 * time.Second, 0} {
		f := &serverFlags{id: "n1", data: t.TempDir()}
		fl := pflag.NewFlagSet("server", pflag.ContinueOnError)
		f.queue.register(fl) // their defaults
		f.mail.register(fl)
		if err := fl.Parse([]string{"--smtp-refused-notice-timeout", d.String()}); err != nil {
			t.Fatal(err)
		}
		cfg, err := f.nodeConfig([]byte("0123456789abcdef"), 0, tlsSet{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RefusedNoticeTimeout != d {
			t.Errorf("--smtp-refused-notice-timeout %v: node gets %v", d, cfg.RefusedNoticeTimeout)
		}
	}
	for _, bad := range []string{"-1s", "500ms", (node.MaxRefusedNoticeTimeout + time.Second).String()} {
		_, stderr, err := cli(t, "", "server", "--id", "n1", "--data", t.TempDir(), "--smtp-refused-notice-timeout", bad)
		if err == nil || !strings.Contains(stderr, "--smtp-refused-notice-timeout "+bad+": must be") {
			t.Fatalf("limit %s: err %v, stderr %q", bad, err, stderr)
		}
	}
}
