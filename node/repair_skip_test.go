package node

import (
	"testing"
	"time"

	"powermail/fsm"
)

// A periodic round in a healthy cluster skips the scan until something
// may have left a body off R: an unlisted copy (the placement mark
// moves), or a node down past the grace (no entry at all). A round
// asked for by hand always scans.
func TestPeriodicRepairSkipsTheScanWhileHealthy(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 6, 500)
	ctx := ctxT(t, 30*time.Second)
	round := func(periodic bool) RepairStatus {
		t.Helper()
		st, err := l.repairRound(ctx, periodic)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	scanned := func(periodic bool) bool {
		t.Helper()
		before := l.repair.get().LastScan
		return round(periodic).LastScan != before
	}
	if !scanned(true) {
		t.Fatal("the first periodic round did not scan")
	}
	if scanned(true) {
		t.Fatal("a periodic round scanned a healthy cluster that had not changed")
	}
	deliverN(t, c.follower(), 3, 501) // new bodies on R replicas: nothing to do
	if scanned(true) {
		t.Fatal("deliveries on R replicas made a periodic round scan")
	}
	if !scanned(false) {
		t.Fatal("a round asked for by hand did not scan")
	}

	// A copy found missing is unlisted (as the audit does): the mark
	// moves, and the next periodic round scans and repairs the body.
	b, err := l.State().Body(hashes[0].String())
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, l, &fsm.BodyPlace{Hash: hashes[0].String(), Remove: b.Replicas[:1]})
	repaired := l.repair.get().Repaired
	if !scanned(true) {
		t.Fatal("a periodic round skipped the scan after a copy was unlisted")
	}
	if st := l.repair.get(); st.Repaired != repaired+1 || st.UnderReplicated != 1 {
		t.Fatalf("after the unlisting: %+v, want one short body repaired", st)
	}
	assertRedundant(t, c, l, hashes, 2)
	// A scan that found work is not clean: the next one checks again.
	if !scanned(true) || scanned(true) {
		t.Fatal("after a repair, want one more scan and then skipped ones")
	}

	// A node down past the grace makes bodies short with no entry.
	victim := busiestFollower(t, c, l, hashes)
	victim.Kill()
	delete(c.nodes, victim.ID())
	time.Sleep(l.cfg.RepairGrace + 500*time.Millisecond)
	if !scanned(true) || l.repair.get().UnderReplicated == 0 {
		t.Fatalf("a node down past the grace: %+v, want a scan that finds short bodies", l.repair.get())
	}
	// The copies it made moved the mark: one more scan finds every body
	// settled (R healthy listings, plus the down node's), and while the
	// same node stays down, periodic rounds skip again.
	if !scanned(true) {
		t.Fatal("no scan after the repair's copies moved the mark")
	}
	if st := l.repair.get(); st.UnderReplicated != 0 {
		t.Fatalf("after the repair: %+v", st)
	}
	if scanned(true) {
		t.Fatal("a periodic round scanned while the same node stayed down and every body was settled")
	}
	deliverN(t, l, 3, 502)
	if scanned(true) {
		t.Fatal("deliveries to the live nodes made a periodic round scan")
	}
}

// A clean scan answers only for the same members, the same of them down,
// and not beyond its age bound, shorter while a member is down.
func TestCleanScanCoversTheSameDownSetOnly(t *testing.T) {
	now := time.Now()
	healthy := cleanScan{term: 3, mark: 10, replicas: 2, members: "n1,n2,n3", at: now}
	degraded := healthy
	degraded.down = "n3"
	full := healthy
	full.full = "n2"
	later := func(c cleanScan, d time.Duration) cleanScan { c.at = c.at.Add(d); return c }
	for name, tc := range map[string]struct {
		clean, now cleanScan
		want       bool
	}{
		"healthy, unchanged":          {healthy, later(healthy, time.Minute), true},
		"a member went down":          {healthy, later(degraded, time.Minute), false},
		"the member came back":        {degraded, later(healthy, time.Minute), false},
		"the same member still down":  {degraded, later(degraded, time.Minute), true},
		"another member down":         {degraded, func() cleanScan { c := later(degraded, time.Minute); c.down = "n2"; return c }(), false},
		"degraded past its bound":     {degraded, later(degraded, repairDegradedScanEvery), false},
		"healthy within the hour":     {healthy, later(healthy, repairDegradedScanEvery), true},
		"healthy past the full bound": {healthy, later(healthy, repairFullScanEvery), false},
		"a member reported no room":   {healthy, later(full, time.Minute), false},
		"the member reported room":    {full, later(healthy, time.Minute), false},
		"the same member still full":  {full, later(full, time.Minute), true},
	} {
		if got := tc.clean.covers(tc.now); got != tc.want {
			t.Errorf("%s: covers %v, want %v", name, got, tc.want)
		}
	}
}

// A body short of R with a copy on every healthy member has nowhere to
// go: a scan would leave it, so it does not keep periodic scans coming.
func TestSettledBodies(t *testing.T) {
	live := liveness{self: "n1",
		members: map[string]fsm.Member{"n1": {ID: "n1"}, "n2": {ID: "n2"}, "n3": {ID: "n3"}},
		alive:   map[string]bool{"n1": true, "n2": true, "n3": false}}
	for _, tc := range []struct {
		r        int
		replicas []string
		want     bool
	}{
		{2, []string{"n1", "n2"}, true},
		{2, []string{"n1", "n3"}, false},         // n2 can take a copy
		{3, []string{"n1", "n2"}, true},          // no healthy member lacks it
		{3, []string{"n1", "n2", "n3"}, true},    // the down one keeps its listing
		{3, []string{"n1"}, false},               // n2 can take a copy
		{2, []string{"n1", "n2", "n3"}, true},    // extras wait for n3 to return
		{1, []string{"n1", "n2"}, false},         // an extra to trim now
		{2, []string{"n1", "n2", "gone"}, false}, // a removed node to unlist
		{3, []string{"n1", "n2", "gone"}, true},  // unlisted with the copy no member can take yet
		{3, []string{"n1", "gone"}, false},       // n2 can take a copy
	} {
		if got := settled(live, tc.r, fsm.BodyRecord{Body: fsm.Body{Replicas: tc.replicas}}); got != tc.want {
			t.Errorf("R=%d on %v: settled %v, want %v", tc.r, tc.replicas, got, tc.want)
		}
	}
	// A member that reported no room takes no copy either.
	live.full = map[string]bool{"n2": true}
	for _, tc := range []struct {
		r        int
		replicas []string
		want     bool
	}{
		{2, []string{"n1"}, true},                // n2 has no room
		{2, []string{"n1", "n3"}, true},          // nor here
		{2, []string{"n2"}, false},               // n1 can take a copy
		{2, []string{"n1", "n2", "gone"}, false}, // a removed node to unlist
		{1, []string{"n1", "n2"}, false},         // an extra to trim now
	} {
		if got := settled(live, tc.r, fsm.BodyRecord{Body: fsm.Body{Replicas: tc.replicas}}); got != tc.want {
			t.Errorf("n2 full, R=%d on %v: settled %v, want %v", tc.r, tc.replicas, got, tc.want)
		}
	}
}
