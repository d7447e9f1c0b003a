package jepsen

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/jepsen/check"
)

// fakeCluster has nodes but no processes: enough for the nemesis's choices.
func fakeCluster(n int) *Cluster {
	c := &Cluster{}
	for i := range n {
		c.nodes = append(c.nodes, &Node{ID: fmt.Sprintf("n%d", i+1)})
	}
	return c
}

// connected reports whether a and b can talk, given the cut pairs.
func connected(pairs [][2]string, a, b string) bool {
	for _, p := range pairs {
		if (p[0] == a && p[1] == b) || (p[0] == b && p[1] == a) {
			return false
		}
	}
	return true
}

func TestPartitionShapes(t *testing.T) {
	for _, size := range []int{3, 5} {
		nem := NewNemesis(fakeCluster(size), nil, Plan{}, int64(size), nil)
		ids := []string{}
		for i := range size {
			ids = append(ids, fmt.Sprintf("n%d", i+1))
		}
		// Isolating a node cuts exactly its links.
		sides, pairs := nem.partition(t.Context(), "n2")
		if len(pairs) != size-1 || !strings.HasPrefix(sides, "n2 | ") {
			t.Errorf("%d nodes, isolate n2: %q %v", size, sides, pairs)
		}
		for _, id := range ids {
			if id != "n2" && connected(pairs, "n2", id) {
				t.Errorf("%d nodes: n2 still talks to %s", size, id)
			}
		}
		// Minority: a minority cut from the majority, each side connected.
		_, pairs = nem.partition(t.Context(), TargetMinority)
		cutOff := map[string]bool{}
		for _, p := range pairs {
			cutOff[p[0]], cutOff[p[1]] = true, true
		}
		minority := (size - 1) / 2
		if len(pairs) != minority*(size-minority) {
			t.Errorf("%d nodes, minority: %d cut links, want %d", size, len(pairs), minority*(size-minority))
		}
		// Bridge: one node talks to everyone, the rest split in two halves
		// that cannot talk to each other.
		sides, pairs = nem.partition(t.Context(), TargetBridge)
		bridge := ""
		for _, id := range ids {
			all := true
			for _, o := range ids {
				all = all && connected(pairs, id, o)
			}
			if all {
				bridge = id
			}
		}
		if bridge == "" || !strings.Contains(sides, "bridge "+bridge) || len(pairs) == 0 {
			t.Errorf("%d nodes, bridge: %q %v", size, sides, pairs)
		}
		half := (size - 1) / 2
		if len(pairs) != half*(size-1-half) {
			t.Errorf("%d nodes, bridge: %d cut links, want %d", size, len(pairs), half*(size-1-half))
		}
	}
}

func TestParseUIDL(t *testing.T) {
	got, err := parseUIDL([]byte("1 7.12\r\n2 7.15\r\n"))
	want := []popEntry{{1, 7, 12}, {2, 7, 15}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("parseUIDL = %v, %v; want %v", got, err, want)
	}
	if got, err := parseUIDL(nil); err != nil || len(got) != 0 {
		t.Errorf("empty UIDL = %v, %v", got, err)
	}
	if _, err := parseUIDL([]byte("1 abc\r\n")); err == nil {
		t.Error("a UIDL that is not uidvalidity.uid was accepted")
	}
}

func TestPOPMulti(t *testing.T) {
	p := &popConn{r: bufioReader("line one\r\n..dot-stuffed\r\n.\r\nnext\r\n")}
	got, err := p.multi()
	if err != nil || string(got) != "line one\r\n.dot-stuffed\r\n" {
		t.Fatalf("multi = %q, %v", got, err)
	}
}

func TestDirOutcome(t *testing.T) {
	he := func(status int) error { return fmt.Errorf("POST x: %w", &HTTPError{Status: status}) }
	for _, tc := range []struct {
		f      string
		err    error
		typ    check.OpType
		code   string
		exists *bool
	}{
		{check.FDirAdd, nil, check.OK, "", nil},
		{check.FDirAdd, he(409), check.Fail, check.ErrExists, nil},
		{check.FDirAdd, he(503), check.Info, "", nil}, // may have committed
		{check.FDirAdd, he(400), check.Fail, "", nil},
		{check.FDirAdd, errors.New("timeout"), check.Info, "", nil},
		{check.FDirRemove, he(404), check.Fail, check.ErrNotFound, nil},
		{check.FDirRemove, he(500), check.Info, "", nil},
		{check.FDirRead, nil, check.OK, "", check.Bool(true)},
		{check.FDirRead, he(404), check.OK, "", check.Bool(false)},
		{check.FDirRead, he(503), check.Fail, "", nil},
		{check.FDirRead, io.ErrUnexpectedEOF, check.Info, "", nil},
	} {
		got := dirOutcome(check.Op{F: tc.f, Type: check.Invoke}, tc.err)
		if got.Type != tc.typ || (tc.code != "" && got.Error != tc.code) ||
			(tc.exists == nil) != (got.Exists == nil) || (tc.exists != nil && *tc.exists != *got.Exists) {
			t.Errorf("%s with %v: got %s %q exists=%v", tc.f, tc.err, got.Type, got.Error, got.Exists)
		}
	}
}

func TestFlagWorkRetiresMessages(t *testing.T) {
	w := NewWorkload(nil, nil, WorkloadConfig{Seed: 1})
	f := w.flagsW
	rng := w.rng(9)
	fills, ops := 0, map[string]int{}
	for range 2000 {
		m, slot := f.pick(rng)
		switch {
		case slot >= 0:
			fills++
			f.fill(slot, &flagMsg{msgID: fmt.Sprint(fills), uid: uint32(fills)})
		case m != nil:
			ops[m.msgID]++
		}
	}
	if fills < 2000/(flagOpsPerMsg+1) {
		t.Errorf("only %d messages appended in 2000 picks", fills)
	}
	for id, n := range ops {
		if n > flagOpsPerMsg {
			t.Errorf("message %s got %d operations, more than %d", id, n, flagOpsPerMsg)
		}
	}
}

func TestLatencySVG(t *testing.T) {
	rec := check.NewRecorder(nil)
	for i := range 50 {
		for _, typ := range []check.OpType{check.Invoke, check.OK} {
			if i%10 == 3 && typ == check.OK {
				typ = check.Info
			}
			rec.Record(check.Op{Process: i, Type: typ, F: check.FDeliver})
		}
		rec.Record(check.Op{Process: 100 + i, Type: check.Invoke, F: check.FRead})
		rec.Record(check.Op{Process: 100 + i, Type: check.Fail, F: check.FRead})
		time.Sleep(100 * time.Microsecond)
	}
	rec.Record(check.Op{Process: NemesisProcess, Type: check.Invoke, F: "kill"})
	rec.Record(check.Op{Process: 999, Type: check.Invoke, F: check.FDirAdd}) // pending: not drawn
	windows := []FaultWindow{{Kind: FaultKill, Node: "n1", Target: TargetLeader, Start: 1000, End: 2000000, Recovered: 3000000}}
	svg := LatencySVG(rec.History(), windows)
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, svg)
		}
	}
	s := string(svg)
	for _, want := range []string{">deliver<", ">read<", "kill n1", okColor, failColor, infoColor, "ok 45", "info 5", "fail 50"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if strings.Contains(s, ">dir-add<") {
		t.Error("a pending operation got a panel")
	}
	if got := LatencySVG(check.History{{Type: check.OK, F: "x"}}, nil); !strings.Contains(string(got), "no plot") {
		t.Errorf("malformed history: %s", got)
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

func TestNewCrashKnownSignature(t *testing.T) {
	dump := "log line\npanic: runtime error: invalid memory address or nil pointer dereference\n" +
		"github.com/hashicorp/raft.(*Raft).State(...)\npowermail/node.(*Node).onLeader(0x1)\n"
	cr := newCrash("n2", "exit status 2", dump)
	if cr.Known != "bug 2" || !strings.HasPrefix(cr.Output, "panic:") {
		t.Errorf("known crash: %+v", cr)
	}
	other := newCrash("n2", "exit status 2", "panic: something else\nnode.(*Node).onLeader\n")
	if other.Known != "" {
		t.Errorf("a different panic matched %s", other.Known)
	}
	if long := newCrash("n1", "x", strings.Repeat("y", 5000)); len(long.Output) != 2000 {
		t.Errorf("output not capped: %d bytes", len(long.Output))
	}
}

// TestResidentMemory: the harness reads a process's RSS from /proc and
// reports the peak and last sample per node.
func TestResidentMemory(t *testing.T) {
	rss, err := residentBytes(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("this test's own RSS: %d, %v", rss, err)
	}
	if _, err := residentBytes(1 << 30); err == nil {
		t.Fatal("RSS of a process that does not exist")
	}
	m := newMemWatch()
	if m.summary() != "" {
		t.Fatalf("summary before any sample: %q", m.summary())
	}
	m.peak["n2"], m.last["n2"] = 900<<20, 800<<20
	m.peak["n1"], m.last["n1"] = 1<<30, 1<<30
	if got, want := m.summary(), "resident memory: n1 peak 1024 MiB, last 1024 MiB; n2 peak 900 MiB, last 800 MiB"; got != want {
		t.Fatalf("summary %q, want %q", got, want)
	}
}
