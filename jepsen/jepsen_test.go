package jepsen

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/jepsen/check"
)

// TestShortPlan is the CI plan: three real nodes behind the partition
// proxies, 100 s of SMTP, IMAP, POP3, directory and forwarding load
// through random nodes (forwards leave through the outbound queue for the
// Remote) while the "cycle" plan isolates the leader, kills the leader,
// corrupts a body replica, removes and re-joins a follower, slows a node,
// pauses a follower and cuts a bridge; then a final read through every
// node, a drained queue and a storage verification. Every checker must pass and every
// fault kind must have been injected. Results are kept (and their
// directory logged) when it fails.
func TestShortPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster under faults for about two minutes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "jepsen-short-")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := BuildBinary(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Binary:     bin,
		ResultsDir: filepath.Join(dir, "results"),
		Nodes:      3,
		Replicas:   2,
		// Long enough for every fault kind once even on a loaded machine
		// (a member change and its redundancy check can take 30 s there).
		Time:        100 * time.Second,
		Faults:      AllFaults,
		Plan:        "cycle",
		Seed:        1,
		Concurrency: 6,
		Progress:    &testWriter{t: t},
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v (results in %s)", err, dir)
	}
	failed := false
	fail := func(format string, args ...any) {
		failed = true
		t.Errorf(format, args...)
	}
	if !rep.Valid {
		fail("run invalid")
	}
	if !check.AllValid(rep.Results) || len(rep.Results) != 6 {
		fail("checkers: %d results, all valid %v", len(rep.Results), check.AllValid(rep.Results))
	}
	ok := 0
	for _, o := range rep.Ops {
		if o.F == check.FDeliver {
			ok = o.OK
		}
	}
	if ok < 50 {
		fail("only %d deliveries acknowledged", ok)
	}
	kinds := map[FaultKind]int{}
	for _, w := range rep.Faults {
		if w.Error != "" {
			fail("fault %s on %s did not heal: %s", w.Kind, w.Node, w.Error)
		}
		kinds[w.Kind]++
	}
	for _, k := range AllFaults {
		if kinds[k] == 0 {
			fail("faults injected: %v, want every kind", kinds)
			break
		}
	}
	for _, r := range rep.Results {
		if r.Name == check.NameForwards && r.Counts["arrived"] == 0 {
			fail("no forward reached the remote: %v", r.Counts)
		}
	}
	for _, f := range []string{check.FRead, check.FStoreFlags, check.FReadFlags, check.FPopDele, check.FDirAdd, check.FFetch, check.FForward} {
		n := 0
		for _, o := range rep.Ops {
			if o.F == f {
				n = o.OK
			}
		}
		if n == 0 {
			fail("no %s operation succeeded", f)
		}
	}
	if failed {
		t.Logf("summary:\n%s", rep.Summary())
		t.Logf("results kept in %s", dir)
		return
	}
	os.RemoveAll(dir)
}

// testWriter sends progress lines to t.Log (shown with -v or on failure).
type testWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestParseFaults(t *testing.T) {
	for in, want := range map[string][]FaultKind{
		"":                          nil,
		"none":                      nil,
		"all":                       AllFaults,
		"partition, corrupt,member": {FaultPartition, FaultCorrupt, FaultMember},
		"kill":                      {FaultKill},
		"pause,kill":                {FaultPause, FaultKill},
		"kill, kill":                {FaultKill},
	} {
		got, err := ParseFaults(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseFaults(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseFaults("kill,flood"); err == nil {
		t.Error("an unknown fault kind was accepted")
	}
}

func TestPlans(t *testing.T) {
	kinds := AllFaults
	a, err := NewPlan("random", kinds, 42, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewPlan("random", kinds, 42, time.Minute)
	c, _ := NewPlan("random", kinds, 43, time.Minute)
	if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, c) {
		t.Error("the random plan is not a function of its seed")
	}
	if len(a.Steps) < 3 {
		t.Errorf("a minute of random plan has %d steps", len(a.Steps))
	}
	long, _ := NewPlan("random", kinds, 42, 10*time.Minute)
	seen := map[FaultKind]bool{}
	for _, s := range long.Steps {
		seen[s.Kind] = true
		lo, hi := 2*time.Second, 12*time.Second
		switch s.Kind {
		case FaultKill, FaultSlow:
			hi = 5 * time.Second
		case FaultMember:
			lo, hi = 3*time.Second, 8*time.Second
		case FaultCorrupt:
			lo, hi = time.Second, time.Second
		}
		if s.Gap < 2*time.Second || s.Gap > 5*time.Second || s.Hold < lo || s.Hold > hi {
			t.Errorf("step out of range: %v", s)
		}
		if s.Kind != FaultPartition && (s.Target == TargetMinority || s.Target == TargetBridge) {
			t.Errorf("a partition shape for another fault: %v", s)
		}
	}
	if len(seen) != len(AllFaults) {
		t.Errorf("ten minutes of random plan use only %v", seen)
	}
	firstKinds := map[FaultKind]bool{}
	for _, s := range a.Steps[:len(AllFaults)] {
		firstKinds[s.Kind] = true
	}
	if len(firstKinds) != len(AllFaults) {
		t.Errorf("the random plan's first %d steps have only %v", len(AllFaults), firstKinds)
	}
	cycle, _ := NewPlan("cycle", kinds, 0, time.Minute)
	first := map[FaultKind]bool{}
	for _, s := range cycle.Steps[:len(AllFaults)] {
		first[s.Kind] = true
	}
	if len(first) != len(AllFaults) {
		t.Errorf("the cycle's first %d steps have only %v", len(AllFaults), first)
	}
	onlyPause, _ := NewPlan("cycle", []FaultKind{FaultPause}, 0, time.Minute)
	for _, s := range onlyPause.Steps {
		if s.Kind != FaultPause {
			t.Errorf("cycle restricted to pauses has %v", s)
		}
	}
	if len(onlyPause.Steps) != 2 || !onlyPause.Cycle {
		t.Errorf("cycle restricted to pauses: %+v", onlyPause)
	}
	if p, _ := NewPlan("random", nil, 1, time.Minute); len(p.Steps) != 0 {
		t.Errorf("random plan without fault kinds has steps: %v", p.Steps)
	}
	if _, err := NewPlan("partition-storm", kinds, 1, time.Minute); err == nil {
		t.Error("an unknown plan was accepted")
	}
}

func TestIdentify(t *testing.T) {
	stored := func(body string) (string, string) {
		raw := "Return-Path: <client@jepsen-client.test>\r\nReceived: from x by n1.jepsen.test; now\r\n" + body
		sum := sha256.Sum256([]byte(raw))
		return raw, hex.EncodeToString(sum[:])
	}
	good := "Message-ID: <c1.2.s3@jepsen.test>\r\nSubject: x\r\n\r\njepsen-token: c1.2.s3@jepsen.test\r\n" + fillerLine + fillerLine
	raw, hash := stored(good)
	if got := identify([]byte(raw), hash); got != "<c1.2.s3@jepsen.test>" {
		t.Errorf("good body identified as %q", got)
	}
	if got := identify([]byte(raw+"x"), hash); got != "corrupt:"+hash {
		t.Errorf("body not matching its hash identified as %q", got)
	}
	raw, hash = stored(strings.Replace(good, "token: c1.2", "token: c9.2", 1))
	if got := identify([]byte(raw), hash); got != "corrupt:"+hash {
		t.Errorf("body with a foreign token identified as %q", got)
	}
	// A flipped byte in the body (what the fault endpoint does), stored
	// under the damaged body's own hash, as a read through IMAP or POP3
	// that cannot check the hash would see it: the content check catches
	// it anywhere in the filler, including the final CRLF.
	for _, at := range []int{len(good) - 1, len(good) - 20, len(good) - len(fillerLine) - 3} {
		bad := []byte(good)
		bad[at] ^= 0x20
		raw, hash = stored(string(bad))
		if got := identify([]byte(raw), hash); got != "corrupt:"+hash {
			t.Errorf("body with byte %d flipped identified as %q", at, got)
		}
		if _, ok := content([]byte(raw)); ok {
			t.Errorf("content accepted a body with byte %d flipped", at)
		}
	}
	// Messages built by the workload identify as their Message-ID.
	rng := NewWorkload(nil, nil, WorkloadConfig{Seed: 5}).rng(1)
	for range 50 {
		body := message(rng, []string{"box1@jepsen.test"}, "<c0.1.s5@jepsen.test>")
		raw, hash := stored(string(body))
		if got := identify([]byte(raw), hash); got != "<c0.1.s5@jepsen.test>" {
			t.Fatalf("workload message identified as %q", got)
		}
	}
}

func TestFreeAddrs(t *testing.T) {
	addrs, err := freeAddrs(15)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("port picked twice: %s in %v", a, addrs)
		}
		seen[a] = true
		var port int
		if _, err := fmt.Sscanf(a, "127.0.0.1:%d", &port); err != nil {
			t.Fatalf("address %q: %v", a, err)
		}
		if start := ephemeralStart(); start > 11000 && port >= start {
			t.Errorf("port %d is in the ephemeral range (from %d)", port, start)
		}
	}
}
