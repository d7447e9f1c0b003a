package node

import (
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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

// TestNodeWaitingToBeAddedSaysHow: a new node started with neither
// --join nor --bootstrap waits to be added by cluster join, which is
// one way to add a node, and also what a forgotten flag looks like. The
// log said only raft's "no known peers, aborting election"; it now says
// that the node waits, and the command that adds it.
func TestNodeWaitingToBeAddedSaysHow(t *testing.T) {
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft()}
	t.Cleanup(c.closeAll)
	var buf syncBuffer
	cfg := c.config("n7", false, "")
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	n := c.startWith(cfg)
	want := "powermail cluster join n7 " + n.ClusterAddr() + " " + n.AdminAddr()
	if log := buf.String(); !strings.Contains(log, "waiting to be added") || !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

// TestJoinToAMemberWhoseTLSFailsSaysNotThatItIsSilent: a member at
// --join that answers, but over TLS this node does not trust (no
// --admin-ca for its certificate) or in plain HTTP at an https://
// address, was logged as not answering, with "is it running?", which
// sends an operator after a process that runs. The line names the step
// and the TLS error instead.
func TestJoinToAMemberWhoseTLSFailsSaysNotThatItIsSilent(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // its side of the refused handshakes
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	for _, addr := range []string{tlsSrv.URL, "https://" + strings.TrimPrefix(plain.URL, "http://")} {
		var buf syncBuffer
		n := &Node{log: slog.New(slog.NewTextHandler(&buf, nil)), cfg: Config{ID: "n9", Secret: []byte("0123456789abcdef")}}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := n.joinThrough(ctx, addr)
		cancel()
		if err == nil {
			t.Fatalf("join through %s succeeded", addr)
		}
		if log := buf.String(); strings.Contains(log, "does not answer") || !strings.Contains(log, "join attempt failed") {
			t.Errorf("join through %s, log:\n%s", addr, log)
		}
	}
}

// TestRestartedMemberDoesNotSayItWaitsToBeAdded: a member restarted on
// its data directory without --join or --bootstrap (as every node is,
// once it is in) is no new node: telling its operator to run cluster
// join would be wrong.
func TestRestartedMemberDoesNotSayItWaitsToBeAdded(t *testing.T) {
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[string]*Node{}, tune: fastRaft()}
	t.Cleanup(c.closeAll)
	n := c.start("n1", true, "")
	c.leader(10 * time.Second)
	cluster, admin := n.ClusterAddr(), n.AdminAddr()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	cfg := c.config("n1", false, "")
	cfg.ClusterAddr, cfg.AdminAddr = cluster, admin
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	c.startWith(cfg)
	c.leader(10 * time.Second)
	if log := buf.String(); strings.Contains(log, "waiting to be added") || strings.Contains(log, "cluster join") {
		t.Errorf("a restarted member's log:\n%s", log)
	}
}
