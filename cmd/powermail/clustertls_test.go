package main

import (
	"fmt"
	"io"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"powermail/node/testcerts"
)

// Three processes started with the cluster TLS flags form a cluster and
// deliver across it, and their cluster ports no longer speak the plain
// handshake.
func TestClusterTLSThroughTheBinary(t *testing.T) {
	cert, key, ca := testcerts.NewCA(t, "cluster CA").Issue(t, t.TempDir(), "node")
	ps := startMailClusterN(t, 3, "--cluster-tls-cert", cert, "--cluster-tls-key", key, "--cluster-tls-ca", ca)
	if code, msg := send(t, ps[1].smtp, "sender@elsewhere.net", []string{"alice@example.com"}, "Subject: over TLS\r\n\r\nHi.\r\n"); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	for _, p := range ps {
		if m := messages(t, p.admin, "alice@example.com"); len(m) != 1 {
			t.Fatalf("alice on %s: %+v", p.id, m)
		}
	}
	// The plain handshake's opening gets no answer, only a closed
	// connection (a plain node answers it with 64 bytes).
	conn, err := net.DialTimeout("tcp", ps[0].cluster, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(append([]byte("PMC2H"), make([]byte, 32)...)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(conn, make([]byte, 64)); err == nil {
		t.Fatalf("a plain handshake got %d bytes back", n)
	}
}

// A running plain cluster switches to cluster TLS in two rounds of
// one-at-a-time restarts, first in mixed mode, then in the default one,
// and while each node is down the other two still form a quorum and
// accept mail.
func TestClusterTLSSwitchKeepsTheQuorum(t *testing.T) {
	cert, key, ca := testcerts.NewCA(t, "cluster CA").Issue(t, t.TempDir(), "node")
	ps := startMailClusterN(t, 3)
	base := make([][]string, len(ps))
	for i, p := range ps {
		base[i] = p.extra
	}
	tlsArgs := []string{"--cluster-tls-cert", cert, "--cluster-tls-key", key, "--cluster-tls-ca", ca}
	sent := 0
	for _, round := range [][]string{append(slices.Clone(tlsArgs), "--cluster-tls-mode", "mixed"), tlsArgs} {
		for i, p := range ps {
			if err := p.stop(syscall.SIGTERM); err != nil {
				t.Fatalf("stop %s: %v; its log:\n%s", p.id, err, p.log.String())
			}
			other := ps[(i+1)%len(ps)]
			sendEventually(t, other.smtp, fmt.Sprintf("Subject: while %s restarts\r\n\r\nhi\r\n", p.id))
			sent++
			p.start(t, append(slices.Clone(base[i]), round...)...)
			waitStatus(t, other.admin, 30*time.Second, func(s statusJSON) bool { return s.Health == "healthy" })
		}
	}
	for _, p := range ps {
		if m := messages(t, p.admin, "alice@example.com"); len(m) != sent {
			t.Fatalf("alice on %s holds %d messages, want %d", p.id, len(m), sent)
		}
	}
}

// sendEventually sends one message to alice through addr, retrying a
// temporary refusal (a leader hand-over) for up to 15 s.
func sendEventually(t *testing.T, addr, body string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, msg := send(t, addr, "sender@elsewhere.net", []string{"alice@example.com"}, body)
		if code == 250 {
			return
		}
		if code/100 != 4 || time.Now().After(deadline) {
			t.Fatalf("send through %s: %d %s", addr, code, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
