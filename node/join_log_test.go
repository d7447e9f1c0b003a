package node

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// TestJoinToNothingSaysSo: a new node started with a --join that nothing
// answers at (a mistyped port, the member not started) logged, every two
// seconds, that "leaving the cluster before joining" failed, which sends
// an operator after a removal nobody asked for. The line now says that
// the member at --join does not answer.
func TestJoinToNothingSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	var buf syncBuffer
	n := &Node{log: slog.New(slog.NewTextHandler(&buf, nil)), cfg: Config{ID: "n9", Secret: []byte("0123456789abcdef")}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := n.leaveThrough(ctx, dead); err == nil {
		t.Fatal("leave through an address nobody answers at succeeded")
	}
	log := buf.String()
	if !strings.Contains(log, "does not answer") || !strings.Contains(log, "through="+dead) || strings.Contains(log, "leaving the cluster") {
		t.Errorf("log:\n%s", log)
	}
}
