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
	line := []byte("NOOP " + strings.Repeat("x", 8000) + "\r\n")
	// The least of a few runs, so that what other goroutines of the test
	// process allocate meanwhile does not count.
	least := ^uint64(0)
	for range 3 {
		least = min(least, trickledLineAlloc(t, line))
	}
	if least > 1<<20 {
		t.Errorf("a %d-octet line read an octet at a time allocated %d octets", len(line), least)
	}
}

// trickledLineAlloc passes line through a gate an octet a read and
// returns the octets allocated meanwhile.
func trickledLineAlloc(t *testing.T, line []byte) uint64 {
	t.Helper()
	srv, cli := net.Pipe()
	defer srv.Close()
	defer cli.Close()
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
	return after.TotalAlloc - before.TotalAlloc
}
