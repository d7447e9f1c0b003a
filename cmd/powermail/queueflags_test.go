package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"powermail/node"
	"powermail/node/testcerts"
)

// --relay-ca makes the queue verify the smarthost against that CA; a file
// with no certificate stops the server.
func TestRelayCAFlag(t *testing.T) {
	dir := t.TempDir()
	_, _, caFile := testcerts.NewCA(t, "relay CA").Issue(t, dir, "relay.test")
	q := queueFlags{lease: time.Minute, retryMin: time.Second, retryMax: time.Minute, greeting: time.Second, relayCA: caFile}
	var cfg node.Config
	if err := q.apply(&cfg, "mx.test"); err != nil || cfg.Queue.TLS == nil || cfg.Queue.TLS.RootCAs == nil {
		t.Fatalf("apply: %v, TLS %+v", err, cfg.Queue.TLS)
	}
	bad := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(bad, []byte("no certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q.relayCA = bad
	if err := q.apply(&cfg, "mx.test"); err == nil || !strings.Contains(err.Error(), "--relay-ca") {
		t.Fatalf("apply with an empty CA file: %v", err)
	}
}
