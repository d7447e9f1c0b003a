package main

import (
	"io"
	"net"
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
	if _, err := conn.Write(append([]byte("PMC1H"), make([]byte, 32)...)); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(conn, make([]byte, 64)); err == nil {
		t.Fatalf("a plain handshake got %d bytes back", n)
	}
}
