package node

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawAdmin opens a connection to n's admin API and sends head.
func rawAdmin(t *testing.T, n *Node, head string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.AdminAddr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatal(err)
	}
	return c
}

// ended reads what the server sends until it closes, within d.
func ended(t *testing.T, c net.Conn, d time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server did not close within %v: %v (after %q)", d, err, got)
	}
	return string(got)
}

const slowPost = "POST /v1/domains HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n{"

// A stranger's request body is not read at all: the answer comes at once
// and the connection closes.
func TestAdminStrangerBodyNotRead(t *testing.T) {
	n := newTestCluster(t, 1).leader(5 * time.Second)
	if got := ended(t, rawAdmin(t, n, fmt.Sprintf(slowPost, "")), 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 401") {
		t.Errorf("stranger: %q", got)
	}
}

// A request body that trickles in holds a connection no longer than the
// admin read timeout.
func TestAdminSlowBodyCut(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.AdminReadTimeout = 300 * time.Millisecond })
	n := c.leader(5 * time.Second)
	slow := rawAdmin(t, n, fmt.Sprintf(slowPost, "Authorization: Bearer "+string(testSecret)+"\r\n"))
	if got := ended(t, slow, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Errorf("slow body: %q", got)
	}
}

// Past the cap, a new admin connection is closed at once; a slot freed
// is taken again.
func TestAdminConnectionCap(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.AdminMaxConns = 2 })
	n := c.leader(5 * time.Second)
	first := rawAdmin(t, n, "")
	rawAdmin(t, n, "")
	time.Sleep(100 * time.Millisecond) // both accepted
	if got := ended(t, rawAdmin(t, n, ""), 5*time.Second); got != "" {
		t.Fatalf("third connection answered: %q", got)
	}
	first.Close()
	waitFor(t, 5*time.Second, "a slot back", func() bool {
		conn := rawAdmin(t, n, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return strings.HasPrefix(line, "HTTP/1.1 200")
	})
}
