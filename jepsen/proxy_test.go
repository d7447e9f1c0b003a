package jepsen

import (
	"bufio"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
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
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// dialFrom connects from a given loopback address, which the test's owner
// function maps to a node.
func dialFrom(t *testing.T, src, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and reports whether it came back within d.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string, d time.Duration) bool {
	t.Helper()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	got, err := r.ReadString('\n')
	if err != nil {
		return false
	}
	if strings.TrimSpace(got) != line {
		t.Fatalf("echo %q, want %q", got, line)
	}
	return true
}

func TestNetPartitionAndHeal(t *testing.T) {
	owners := map[string]string{"127.0.0.2": "n1", "127.0.0.3": "n2", "127.0.0.4": "n3"}
	nw := NewNet(func(c net.Conn) string {
		return owners[c.RemoteAddr().(*net.TCPAddr).IP.String()]
	}, nil)
	defer nw.Close()
	toN2, err := nw.Listen("n2", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c1, r1 := dialFrom(t, "127.0.0.2", toN2) // n1 -> n2
	if !roundTrip(t, c1, r1, "hello", time.Second) {
		t.Fatal("no echo with every link up")
	}

	nw.Partition([][2]string{{"n2", "n1"}})
	if got := nw.Cuts(); got != "n1-n2" {
		t.Fatalf("cuts %q", got)
	}
	if roundTrip(t, c1, r1, "held", 300*time.Millisecond) {
		t.Fatal("bytes crossed a cut link")
	}
	c3, r3 := dialFrom(t, "127.0.0.4", toN2) // n3 -> n2 is still up
	if !roundTrip(t, c3, r3, "n3", time.Second) {
		t.Fatal("a link that was not cut is down")
	}
	cNew, rNew := dialFrom(t, "127.0.0.2", toN2) // a new n1 -> n2 connection is held
	if roundTrip(t, cNew, rNew, "new", 300*time.Millisecond) {
		t.Fatal("a new connection crossed a cut link")
	}
	cU, rU := dialFrom(t, "127.0.0.5", toN2) // unknown dialer: n2 has a cut link
	if roundTrip(t, cU, rU, "unknown", 300*time.Millisecond) {
		t.Fatal("a connection from an unknown process crossed into a partitioned node")
	}

	nw.Heal()
	// Held bytes arrive late, as after TCP retransmission.
	c1.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := r1.ReadString('\n'); err != nil || got != "held\n" {
		t.Fatalf("held bytes after heal: %q, %v", got, err)
	}
	if !roundTrip(t, c1, r1, "again", time.Second) {
		t.Fatal("no echo after heal")
	}
	cNew.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, err := rNew.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("held connection after heal: %q, %v", got, err)
	}
	if total, unknown := nw.Connections(); total != 4 || unknown != 1 {
		t.Errorf("connections %d, unknown %d; want 4 and 1", total, unknown)
	}
}

func TestNetSlow(t *testing.T) {
	nw := NewNet(func(net.Conn) string { return "n1" }, nil)
	defer nw.Close()
	addr, err := nw.Listen("n2", "127.0.0.1:0", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c, r := dialFrom(t, "127.0.0.1", addr)
	nw.Slow("n2", 150*time.Millisecond)
	start := time.Now()
	if !roundTrip(t, c, r, "slow", 2*time.Second) {
		t.Fatal("no echo from a slow node")
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > time.Second { // a delay each way
		t.Errorf("round trip took %v through a 150 ms delay", d)
	}
	nw.Heal()
	start = time.Now()
	roundTrip(t, c, r, "fast", time.Second)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("round trip took %v after heal", d)
	}
}

// TestOwnerOf finds the dialing process of a connection through /proc:
// here the test process dials itself.
func TestOwnerOf(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := ownerOf(s, map[int]string{os.Getpid(): "me"})
	if err != nil || got != "me" {
		t.Fatalf("ownerOf = %q, %v; want me", got, err)
	}
	got, err = ownerOf(s, map[int]string{1: "init"})
	if err != nil || got != "" {
		t.Fatalf("ownerOf with a foreign pid = %q, %v; want nothing", got, err)
	}
}
