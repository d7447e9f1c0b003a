package main

import (
	"context"
	"io"
	"net"
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

// A node that takes a request and does not answer in time is "no
// answer" (a write waiting for a quorum), not "cannot reach".
func TestClientTimeoutSaysNoAnswer(t *testing.T) {
	ln := serveRaw(t, func(c net.Conn) { io.Copy(io.Discard, c) }) // reads the request, never answers
	cl := clientFlags{addr: ln.Addr().String(), token: "t", timeout: 300 * time.Millisecond}
	err := cl.do(context.Background(), "POST", "/v1/domains", map[string]string{"name": "x.org"}, nil)
	if err == nil || !strings.Contains(err.Error(), "no answer from") {
		t.Errorf("a silent node: %v, want no answer", err)
	}
	ln.Close()
	err = cl.do(context.Background(), "GET", "/v1/domains", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("a closed port: %v, want cannot reach", err)
	}
}

// serveRaw answers each connection to a loopback listener with handle,
// on its own goroutine, until the test ends or closes the listener.
func serveRaw(t *testing.T, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln
}

// A timeout set by POWERMAIL_TIMEOUT is named so: the operator who gave
// no --timeout would look for one on the command line.
func TestClientTimeoutNamesItsSource(t *testing.T) {
	ln := serveRaw(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	cl := clientFlags{addr: ln.Addr().String(), token: "t", timeout: 300 * time.Millisecond, timeoutFromEnv: true}
	err := cl.do(context.Background(), "POST", "/v1/domains", map[string]string{"name": "x.org"}, nil)
	if err == nil || !strings.Contains(err.Error(), "within POWERMAIL_TIMEOUT 300ms") {
		t.Errorf("a silent node, the timeout from the environment: %v", err)
	}
	t.Setenv("POWERMAIL_TIMEOUT", "0s")
	if _, stderr, err := cli(t, "", "domain", "ls"); err == nil || !strings.Contains(stderr, "POWERMAIL_TIMEOUT 0s") {
		t.Errorf("POWERMAIL_TIMEOUT=0s: %v %q", err, stderr)
	}
}
