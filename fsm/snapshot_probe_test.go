package fsm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSnapshotProbe measures a snapshot of a large directory, as a
// follower that needs one costs its leader (node/snapstore.go streams
// Snapshot.WriteTo to a file), and its Restore into a fresh state, as the
// follower installs it. Gated, since a million mailboxes take minutes:
//
//	PM_PROBE_SNAPSHOT=100000,1000000 go test -count=1 -run TestSnapshotProbe -v -timeout 2h ./fsm
//
// Each N builds N mailboxes (one argon2id hash, as a migration carries),
// N forwards, one to each mailbox, and a message in every 100th
// mailbox, applied in raft batches of 64 entries. It logs each phase's
// wall time, the bytes written, and the peaks of the Go heap (HeapInuse)
// and of the process's resident set above where the phase started
// (VmRSS, which counts Pebble's block cache and memtables, allocated
// outside the Go heap), and asserts that the restored state writes a
// snapshot byte-equal to the first.
func TestSnapshotProbe(t *testing.T) {
	v := os.Getenv("PM_PROBE_SNAPSHOT")
	if v == "" {
		t.Skip("PM_PROBE_SNAPSHOT unset")
	}
	probeEachCount(t, "PM_PROBE_SNAPSHOT", v, probeSnapshot)
}

// probeEachCount runs probe as a subtest for each count in v, a
// comma-separated list read from the variable env.
func probeEachCount(t *testing.T, env, v string, probe func(t *testing.T, n int)) {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 100 {
			t.Fatalf("%s: %q is no count of at least 100", env, f)
		}
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) { probe(t, n) })
	}
}

func probeSnapshot(t *testing.T, n int) {
	a := newApplier(t)
	start := time.Now()
	fillDirectory(t, a, n)
	t.Logf("built %d mailboxes, %d forwards, %d messages in %v (applied index %d)",
		n, n, n/100, time.Since(start).Round(time.Millisecond), a.s.Applied())
	if err := a.s.Sync(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first := filepath.Join(dir, "first")
	var written int64
	measure(t, "snapshot (WriteTo a file)", func() {
		written = writeSnapshotFile(t, a.s, first)
	})
	t.Logf("snapshot: %d bytes (%.1f MiB), %.0f bytes a mailbox", written, float64(written)/(1<<20), float64(written)/float64(n))
	applied := a.s.Applied()
	a.s.Close()

	b, err := Open(filepath.Join(dir, "restored"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	measure(t, "restore (from the file)", func() {
		f, err := os.Open(first)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := b.Restore(f); err != nil {
			t.Fatal(err)
		}
	})
	if b.Applied() != applied {
		t.Fatalf("restored state at index %d, the snapshot's is %d", b.Applied(), applied)
	}
	mb, err := b.Mailbox(probeMailbox(n - 1))
	if err != nil || mb.Address != probeMailbox(n-1) {
		t.Fatalf("last mailbox after restore: %+v %v", mb, err)
	}
	again := filepath.Join(dir, "again")
	if w := writeSnapshotFile(t, b, again); w != written || fileSum(t, first) != fileSum(t, again) {
		t.Fatalf("the restored state's snapshot (%d bytes) differs from the one restored (%d bytes)", w, written)
	}
}

func probeMailbox(i int) string { return fmt.Sprintf("user%07d@d%d.example", i, i%10) }

// fillDirectory applies n mailboxes, n forwards and n/100 deliveries to
// a, 100 mailboxes an entry and 64 entries a raft batch.
func fillDirectory(t *testing.T, a *applier, n int) {
	fillDirectoryWatched(t, a, n, nil)
}

// fillDirectoryWatched is fillDirectory calling progress (if not nil)
// after every eighth of each phase with the phase and the count done.
func fillDirectoryWatched(t *testing.T, a *applier, n int, progress func(phase string, done int)) {
	hash, err := HashPassword("probe password")
	if err != nil {
		t.Fatal(err)
	}
	var cs []Command
	flush := func(force bool) {
		if len(cs) == 64 || (force && len(cs) > 0) {
			for j, r := range a.applyBatch(cs) {
				if r.Err != nil {
					t.Fatalf("%T %d: %v", cs[j], j, r.Err)
				}
			}
			cs = cs[:0]
		}
	}
	step := max(n/8, 100)
	tick := func(phase string, done int) {
		if progress != nil && (done%step == 0 || done == n) {
			flush(true)
			progress(phase, done)
		}
	}
	cs = append(cs, &SettingsSet{Settings: Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: NewestEncoding, MaxVoters: DefaultMaxVoters}})
	for d := range 10 {
		cs = append(cs, &DomainAdd{Name: fmt.Sprintf("d%d.example", d)})
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		cs = append(cs, &MemberSet{Member{ID: id, ClusterAddr: id + ":7000"}})
	}
	flush(true)
	for i := 0; i < n; i += 100 {
		add := &MailboxAdd{Distinct: true} // as node proposes it
		for j := i; j < min(i+100, n); j++ {
			add.Mailboxes = append(add.Mailboxes, NewMailbox{Address: probeMailbox(j), PasswordHash: hash, QuotaBytes: 1 << 30})
		}
		cs = append(cs, add)
		flush(false)
		tick("mailboxes", min(i+100, n))
	}
	for i := range n {
		cs = append(cs, &ForwardAdd{Address: "alias-" + probeMailbox(i), Targets: []string{probeMailbox(i)}})
		flush(false)
		tick("forwards", i+1)
	}
	for i := 0; i < n; i += 100 {
		cs = append(cs, &Deliver{Hash: bodyHash(strconv.Itoa(i)), Size: 4096, Replicas: []string{"n1", "n2"},
			Mailboxes: []string{probeMailbox(i)}, InternalDate: int64(i)})
		flush(false)
	}
	flush(true)
}

// writeSnapshotFile writes a snapshot of s to path as node's snapshot
// store spills one (a 1 MiB buffer, then a sync) and returns its size.
func writeSnapshotFile(t *testing.T, s *State, path string) int64 {
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	n, err := snap.WriteTo(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func fileSum(t *testing.T, path string) [32]byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// measure runs fn and logs its wall time and the peaks, sampled every
// 20 ms, of the Go heap in use and of the resident set above its level
// when fn started.
func measure(t *testing.T, what string, fn func()) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0, rss0 := ms.HeapInuse, residentBytes()
	peakHeap, peakRSS := heap0, rss0
	var alloc0 = ms.TotalAlloc
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peakHeap = max(peakHeap, m.HeapInuse)
			peakRSS = max(peakRSS, residentBytes())
		}
	}()
	start := time.Now()
	fn()
	took := time.Since(start)
	close(stop)
	wg.Wait()
	runtime.ReadMemStats(&ms)
	t.Logf("%s: %v; heap in use %.0f MiB before, peak %.0f MiB; RSS peak +%.0f MiB over %.0f MiB; allocated %.0f MiB",
		what, took.Round(time.Millisecond), mib(heap0), mib(peakHeap), mib(peakRSS-min(rss0, peakRSS)), mib(rss0), mib(ms.TotalAlloc-alloc0))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// residentBytes is the process's VmRSS, or 0 where /proc is missing.
func residentBytes() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(raw) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			kb, _ := strconv.ParseUint(string(bytes.Fields(rest)[0]), 10, 64)
			return kb << 10
		}
	}
	return 0
}
