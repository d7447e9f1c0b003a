package frontend

import (
	"net"
	"runtime"
	"strings"
	"testing"
)

// A command line that arrives an octet at a time costs the gate memory
// in proportion to the line, not to the line times the reads: a client
// trickling a long line must not make each of its segments copy the
// line read so far into a fresh buffer.
func TestCmdGateTrickledLineGrowsLinearly(t *testing.T) {
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
	line := []byte("NOOP " + strings.Repeat("x", 8000) + "\r\n")
	go func() {
		for i := range line {
			if _, err := cli.Write(line[i : i+1]); err != nil {
				return
			}
		}
	}()
	g := newCmdGate(12<<10, newGateBufs())
	p := make([]byte, 4096)
	got := make([]byte, 0, len(line))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for len(got) < len(line) {
		n, err := g.read(p, srv.Read)
		if err != nil {
			t.Fatalf("read after %d octets: %v", len(got), err)
		}
		got = append(got, p[:n]...)
	}
	runtime.ReadMemStats(&after)
	if string(got) != string(line) {
		t.Fatalf("passed on %d octets, not the line", len(got))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("a %d-octet line read an octet at a time allocated %d octets", len(line), alloc)
	}
}
