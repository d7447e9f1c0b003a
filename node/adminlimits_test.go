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
	return rawAdminFrom(t, n, "", head)
}

// rawAdminFrom is rawAdmin from the source IP src ("": any). On Linux
// every 127.x.y.z is the loopback's, so a test can be several hosts.
func rawAdminFrom(t *testing.T, n *Node, src, head string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", n.AdminAddr())
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

const healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

// answered reports whether a /healthz from src gets its 200.
func answered(t *testing.T, n *Node, src string) bool {
	t.Helper()
	line, _ := bufio.NewReader(rawAdminFrom(t, n, src, healthz)).ReadString('\n')
	return strings.HasPrefix(line, "HTTP/1.1 200")
}

// silent opens k connections from src that send nothing, and gives the
// server time to accept them.
func silent(t *testing.T, n *Node, src string, k int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range k {
		conns = append(conns, rawAdminFrom(t, n, src, ""))
	}
	time.Sleep(100 * time.Millisecond)
	return conns
}

// Past the cap, a new admin connection is closed at once; a slot freed
// is taken again. (From 127.0.0.2: the node's own host is not counted.)
func TestAdminConnectionCap(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.AdminMaxConns = 2 })
	n := c.leader(5 * time.Second)
	first := silent(t, n, "127.0.0.2", 2)[0]
	if got := ended(t, rawAdminFrom(t, n, "127.0.0.2", ""), 5*time.Second); got != "" {
		t.Fatalf("third connection answered: %q", got)
	}
	first.Close()
	waitFor(t, 5*time.Second, "a slot back", func() bool { return answered(t, n, "127.0.0.2") })
}

// Silent connections from one address take only its share of the cap:
// the operator, from another, still gets an answer.
func TestAdminConnectionCapPerIP(t *testing.T) {
	c := newTestClusterWith(t, 1, func(cfg *Config) { cfg.AdminMaxConns, cfg.AdminMaxConnsPerIP = 4, 2 })
	n := c.leader(5 * time.Second)
	conns := silent(t, n, "127.0.0.2", 4)
	if !answered(t, n, "127.0.0.3") {
		t.Fatal("the operator was shut out by one address's silent connections")
	}
	if got := ended(t, conns[2], 5*time.Second); got != "" {
		t.Fatalf("a third connection from one address answered: %q", got)
	}
}

// cappedWithMemberAt5 starts n1 (at 127.0.0.6) and n2 (at 127.0.0.5)
// with admin caps of two connections, one per address, and returns n1.
// Neither is at 127.0.0.1, the source the kernel picks for the tests'
// and the nodes' own connections (n2's join, keep-alives), so those
// never take a slot of the pool a test fills.
func cappedWithMemberAt5(t *testing.T) *Node {
	t.Helper()
	c := newTestClusterWith(t, 2, func(cfg *Config) {
		cfg.AdminMaxConns, cfg.AdminMaxConnsPerIP = 2, 1
		host := map[string]string{"n1": "127.0.0.6", "n2": "127.0.0.5"}[cfg.ID]
		cfg.ClusterAddr, cfg.AdminAddr = host+":0", host+":0"
	})
	c.leader(5 * time.Second)
	return c.nodes["n1"]
}

// Connections from the node's own host and from the members' hosts are
// not counted against the strangers' caps: strangers from many addresses filling the cap shut out
// neither the operator on a node nor the other nodes.
func TestAdminConnectionCapExemptsMembers(t *testing.T) {
	n := cappedWithMemberAt5(t)
	silent(t, n, "127.0.0.2", 1)
	silent(t, n, "127.0.0.3", 1)
	if got := ended(t, rawAdminFrom(t, n, "127.0.0.4", ""), 5*time.Second); got != "" {
		t.Fatalf("a connection past the cap answered: %q", got)
	}
	wantAnswered(t, n, map[string]string{"127.0.0.5": "a member's host", "127.0.0.6": "the node's own host"})
}

// wantAnswered checks that a request from each source (a host: who it
// is) is answered.
func wantAnswered(t *testing.T, n *Node, from map[string]string) {
	t.Helper()
	for src, who := range from {
		if !answered(t, n, src) {
			t.Errorf("%s (%s) was shut out", src, who)
		}
	}
}

// The node's own host (or a proxy there, through which every client
// looks like the host) has a pool of its own, but a bounded one, and
// filling it keeps out neither the members' hosts nor strangers: the
// process never holds more than three times --admin-max-conns.
func TestAdminTrustedConnectionsAreBounded(t *testing.T) {
	n := cappedWithMemberAt5(t)
	silent(t, n, "127.0.0.6", 2)
	if got := ended(t, rawAdminFrom(t, n, "127.0.0.6", ""), 5*time.Second); got != "" {
		t.Fatalf("a connection past the own host's pool answered: %q", got)
	}
	wantAnswered(t, n, map[string]string{"127.0.0.5": "a member's host", "127.0.0.2": "a stranger"})
}
