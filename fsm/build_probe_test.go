package fsm

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestDirectoryBuildProbe measures how applying a large directory slows
// as the store grows: N mailboxes (100 an entry), then N forwards (one
// an entry), 64 entries a raft batch, as fillDirectory builds them. After
// every eighth of each phase it logs the time that eighth took and the
// Pebble shape behind a point read (L0 files and sublevels, read
// amplification, compaction debt). A build that stays linear keeps the
// eighths level. Gated, since a million mailboxes take minutes:
//
//	PM_PROBE_BUILD=1000000 go test -count=1 -run TestDirectoryBuildProbe -v -timeout 1h ./fsm
//
// PM_PROBE_MEMTABLE=4 sets Options.MemTableBytes in MiB (Pebble's own
// default is 4), for comparison with the package default.
func TestDirectoryBuildProbe(t *testing.T) {
	v := os.Getenv("PM_PROBE_BUILD")
	if v == "" {
		t.Skip("PM_PROBE_BUILD unset")
	}
	var opts Options
	if m := os.Getenv("PM_PROBE_MEMTABLE"); m != "" {
		mib, err := strconv.Atoi(m)
		if err != nil || mib < 1 {
			t.Fatalf("PM_PROBE_MEMTABLE: %q is no count of MiB", m)
		}
		opts.MemTableBytes = uint64(mib) << 20
	}
	probeEachCount(t, "PM_PROBE_BUILD", v, func(t *testing.T, n int) { probeBuild(t, n, opts) })
}

func probeBuild(t *testing.T, n int, opts Options) {
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := &applier{t: t, s: s}
	start := time.Now()
	last, prev := start, 0
	fillDirectoryWatched(t, a, n, func(phase string, done int) {
		if done < prev {
			prev = 0 // a new phase
		}
		m := s.db.Metrics()
		t.Logf("%s %d: %v for the last %d; L0 files %d, sublevels %d, read amp %d, compaction debt %d MiB",
			phase, done, time.Since(last).Round(time.Millisecond), done-prev,
			m.Levels[0].TablesCount, m.Levels[0].Sublevels, m.ReadAmp(), m.Compact.EstimatedDebt>>20)
		last, prev = time.Now(), done
	})
	t.Logf("built %d mailboxes and %d forwards in %v", n, n, time.Since(start).Round(time.Millisecond))
	for _, i := range []int{0, n / 2, n - 1} {
		mb, err := s.Mailbox(probeMailbox(i))
		if err != nil || mb.Address != probeMailbox(i) {
			t.Fatalf("mailbox %d after the build: %+v %v", i, mb, err)
		}
	}
}
