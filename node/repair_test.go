package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// repairCluster starts size nodes with fast liveness and rounds run by
// hand (the loop interval is long).
func repairCluster(t *testing.T, size int, tweak func(*Config)) *testCluster {
	c := newTestClusterWith(t, size, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RepairGrace = 2 * time.Second // a live node polled every 100 ms never looks down
		cfg.RepairInterval = time.Hour
		cfg.GCIdle = 200 * time.Millisecond
		if tweak != nil {
			tweak(cfg)
		}
	})
	l := c.leader(5 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, addMailbox("a@example.com"))
	waitFor(t, 10*time.Second, "member records", func() bool {
		m, _ := l.State().Members()
		return len(m) == size
	})
	return c
}

func deliverN(t *testing.T, n *Node, count, size int) []storage.Hash {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	var out []storage.Hash
	for i := 0; i < count; i++ {
		body := fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("r", size))
		if _, err := n.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
			t.Fatalf("deliver %d: %v", i, err)
		}
		out = append(out, storage.HashBytes([]byte(body)))
	}
	return out
}

// assertRedundant checks that every body has exactly want listed
// replicas, all current members, each holding a copy that verifies.
func assertRedundant(t *testing.T, c *testCluster, via *Node, hashes []storage.Hash, want int) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	via.Barrier(ctx)
	for _, h := range hashes {
		b, err := via.State().Body(h.String())
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Replicas) != want {
			t.Fatalf("body %s has replicas %v, want %d", h, b.Replicas, want)
		}
		for _, id := range b.Replicas {
			n := c.nodes[id]
			if n == nil {
				t.Fatalf("body %s listed on %s, not a running node", h, id)
			}
			if err := n.bodies.Verify(ctx, h); err != nil {
				t.Fatalf("body %s on %s: %v", h, id, err)
			}
		}
	}
}

// busiestFollower is the node other than l listed on the most of hashes.
// Placement is random, so a fixed choice may hold none of a few bodies.
func busiestFollower(t *testing.T, c *testCluster, l *Node, hashes []storage.Hash) *Node {
	t.Helper()
	// A delivery through l is applied on l before Deliver returns only
	// while l leads; one that a leader change sent elsewhere reaches l's
	// state a moment later.
	waitFor(t, 10*time.Second, "every body referenced on "+l.ID(), func() bool {
		for _, h := range hashes {
			if _, err := l.State().Body(h.String()); err != nil {
				return false
			}
		}
		return true
	})
	count := map[string]int{}
	for _, h := range hashes {
		b, err := l.State().Body(h.String())
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range b.Replicas {
			if c.nodes[id] != l {
				count[id]++
			}
		}
	}
	var best *Node
	for id, n := range count {
		if best == nil || n > count[best.ID()] {
			best = c.nodes[id]
		}
	}
	if best == nil {
		t.Fatal("no follower holds any of the bodies")
	}
	return best
}

func TestRepairAfterNodeLossAndRemoval(t *testing.T) {
	c := repairCluster(t, 4, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 20, 2000)
	// Lose a node that holds replicas, for good, and remove it.
	victim := busiestFollower(t, c, l, hashes)
	victim.Kill()
	delete(c.nodes, victim.ID())
	if err := l.Remove(ctxT(t, 10*time.Second), victim.ID(), false); err != nil {
		t.Fatal(err)
	}
	// Mail keeps flowing while repair runs.
	done := make(chan []storage.Hash)
	go func() { done <- deliverN(t, c.follower(), 5, 500) }()
	ctx := ctxT(t, 30*time.Second)
	st, err := c.repairRound(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hashes = append(hashes, <-done...)
	if st.Repaired == 0 {
		t.Fatalf("nothing repaired: %+v", st)
	}
	if _, err := c.repairRound(ctx); err != nil {
		t.Fatal(err)
	}
	assertRedundant(t, c, l, hashes, 2)
	if st := l.repair.get(); st.UnderReplicated != 0 {
		t.Fatalf("after repair: %+v", st)
	}
	p, err := l.VerifyAll(ctx, func(VerifyProgress) {})
	if err != nil || p.Short != 0 || p.Total != int64(len(hashes)) {
		t.Fatalf("verify: %+v %v", p, err)
	}
}

func TestRepairCountsReturningReplicasAndTrims(t *testing.T) {
	c := repairCluster(t, 4, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 10, 1000)
	down := busiestFollower(t, c, l, hashes)
	cfg := down.cfg
	down.Close()
	delete(c.nodes, cfg.ID)
	ctx := ctxT(t, 60*time.Second)
	waitFor(t, 10*time.Second, "the node to be down past the grace", func() bool {
		return l.placement.downFor(cfg.ID, l.started) > l.cfg.RepairGrace+100*time.Millisecond
	})
	if st, err := c.repairRound(ctx); err != nil || st.Repaired == 0 {
		t.Fatalf("repair round with a node down: %+v, %v", st, err)
	}
	// Back again: its copies count, and the extras go, each only after the
	// copies that stay were verified.
	back := c.startWith(cfg)
	waitFor(t, 10*time.Second, "the node to be polled", func() bool { return l.placement.downFor(back.ID(), l.started) < 500*time.Millisecond })
	if _, err := c.repairRound(ctx); err != nil {
		t.Fatal(err)
	}
	assertRedundant(t, c, l, hashes, 2)
	if st := l.repair.get(); st.Repaired == 0 || st.Trimmed == 0 {
		t.Fatalf("expected copies made and then trimmed: %+v", st)
	}
}

func TestScrubFindsCorruptionAndRepairReplacesIt(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 4, 3000)
	ctx := ctxT(t, 30*time.Second)
	b, _ := l.State().Body(hashes[0].String())
	holder := c.nodes[b.Replicas[0]]
	if err := holder.bodies.Damage(ctx, hashes[0]); err != nil {
		t.Fatal(err)
	}
	checked, corrupt, err := holder.Scrub(ctx)
	if err != nil || corrupt != 1 || checked == 0 {
		t.Fatalf("scrub: checked %d corrupt %d err %v", checked, corrupt, err)
	}
	if _, err := c.repairRound(ctx); err != nil {
		t.Fatal(err)
	}
	assertRedundant(t, c, l, hashes, 2)
	if holder.corrupt.Load() != 1 {
		t.Errorf("corrupt count %d", holder.corrupt.Load())
	}
}

// A manifest that no longer decodes neither stops the orphan sweep (the
// orphans after it are still collected) nor goes unreported: the copy is
// unlisted and deleted, and repair restores R.
func TestCorruptManifestIsReportedAndSweepGoesOn(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 2, 3000)
	ctx := ctxT(t, 30*time.Second)
	b, _ := l.State().Body(hashes[0].String())
	holder := c.nodes[b.Replicas[0]]
	if err := holder.bodies.DamageManifest(ctx, hashes[0]); err != nil {
		t.Fatal(err)
	}
	orphan, _, err := holder.bodies.Put(ctx, strings.NewReader("never committed"), nil)
	if err != nil {
		t.Fatal(err)
	}
	count, _, err := holder.SweepOrphans(ctx, 0)
	if err != nil || count != 1 {
		t.Fatalf("sweep past a corrupt manifest: %d swept, %v", count, err)
	}
	if has, _, err := holder.bodies.Has(ctx, orphan); has || err != nil {
		t.Fatalf("orphan: has %v, %v", has, err)
	}
	// Deleted, or already replaced by the repair the report kicked.
	if err := holder.bodies.Verify(ctx, hashes[0]); err != nil && !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the corrupt copy stayed: %v", err)
	}
	if holder.corrupt.Load() != 1 {
		t.Errorf("corrupt count %d", holder.corrupt.Load())
	}
	if _, err := c.repairRound(ctx); err != nil {
		t.Fatal(err)
	}
	assertRedundant(t, c, l, hashes, 2)
}

// A scrub pass that deletes a copy whose manifest does not decode also
// reclaims that copy's chunks, so the store's byte count again matches
// the bodies it lists (placement weighs it).
func TestScrubPassReclaimsTheChunksOfACorruptManifest(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 3, 3000)
	ctx := ctxT(t, 30*time.Second)
	b, _ := l.State().Body(hashes[0].String())
	holder := c.nodes[b.Replicas[0]]
	if err := holder.bodies.DamageManifest(ctx, hashes[0]); err != nil {
		t.Fatal(err)
	}
	holder.scrubPass(ctx)
	if holder.corrupt.Load() != 1 {
		t.Fatalf("corrupt count %d", holder.corrupt.Load())
	}
	// Repair fetches a new copy meanwhile, and a commit counts its bytes
	// just after its manifest shows: the two agree once it is in.
	var listed, counted int64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		listed = 0
		for info, err := range holder.bodies.Bodies(ctx, storage.Hash{}) {
			if err != nil {
				t.Fatal(err)
			}
			listed += info.Size
		}
		st, err := holder.bodies.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if counted = st.BodyBytes; counted == listed || time.Now().After(deadline) {
			break
		}
	}
	if counted != listed {
		t.Fatalf("the store counts %d body bytes, its bodies hold %d", counted, listed)
	}
}

func TestReadOfCorruptCopyIsServedAndRepaired(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 1, 5000)
	ctx := ctxT(t, 30*time.Second)
	b, _ := l.State().Body(hashes[0].String())
	holder := c.nodes[b.Replicas[0]]
	holder.bodies.Damage(ctx, hashes[0])
	rd, err := holder.OpenBody(ctx, hashes[0].String())
	if err != nil {
		t.Fatalf("open through the node with the corrupt copy: %v", err)
	}
	got, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || storage.HashBytes(got) != hashes[0] {
		t.Fatalf("read through the node with the corrupt copy: %d bytes, %v", len(got), err)
	}
	waitFor(t, 5*time.Second, "the corrupt copy reported", func() bool { return holder.corrupt.Load() == 1 })
	if _, err := c.repairRound(ctx); err != nil {
		t.Fatal(err)
	}
	assertRedundant(t, c, l, hashes, 2)
}

// A read that seeks (an IMAP partial fetch) and then meets the corrupt
// chunk resumes from a replica at the position sought, not at the count
// of bytes read so far.
func TestCorruptReadAfterSeekResumesAtThePosition(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 1, 100_000)
	ctx := ctxT(t, 30*time.Second)
	b, _ := l.State().Body(hashes[0].String())
	holder, other := c.nodes[b.Replicas[0]], c.nodes[b.Replicas[1]]
	want := readBody(t, other, hashes[0])
	holder.bodies.Damage(ctx, hashes[0])
	rd, err := holder.OpenBody(ctx, hashes[0].String())
	if err != nil {
		t.Fatalf("open through the node with the corrupt copy: %v", err)
	}
	defer rd.Close()
	const at = 1000
	if _, err := rd.Seek(at, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 64)
	if _, err := io.ReadFull(rd, got); err != nil {
		t.Fatalf("read after seek: %v", err)
	}
	if !bytes.Equal(got, want[at:at+64]) {
		t.Fatalf("bytes at %d after the fallback: %q, want %q", at, got, want[at:at+64])
	}
}

func readBody(t *testing.T, n *Node, h storage.Hash) []byte {
	t.Helper()
	rd, err := n.OpenBody(ctxT(t, 10*time.Second), h.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A body whose move would only swap which node is fullest stays: one body
// on three nodes at R=2 is as balanced as it gets, and moving it each
// round (as a move of the whole gap did) never ends.
func TestRebalanceDoesNotSwapTheFullest(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 1, 4000)
	ctx := ctxT(t, 30*time.Second)
	before, _ := l.State().Body(hashes[0].String())
	for range 3 {
		time.Sleep(250 * time.Millisecond) // fresh storage figures
		if _, err := c.repairRound(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := l.State().Body(hashes[0].String())
	if st := l.repair.get(); st.Moved != 0 || !slices.Equal(before.Replicas, after.Replicas) {
		t.Fatalf("moved %d times: %v -> %v", st.Moved, before.Replicas, after.Replicas)
	}
}

func TestRebalanceOnJoin(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) { cfg.RebalanceSpread = 0.3 })
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 30, 4000)
	fresh := c.start("n4", false, l.AdminAddr())
	ctx := ctxT(t, 60*time.Second)
	waitFor(t, 10*time.Second, "the new node polled", func() bool { return l.placement.downFor("n4", l.started) < 300*time.Millisecond })
	spread := func() (int64, int64) {
		var lo, hi int64 = 1 << 62, 0
		for _, n := range c.nodes {
			st, _ := n.bodies.Stats(ctx)
			lo, hi = min(lo, st.BodyBytes), max(hi, st.BodyBytes)
		}
		return lo, hi
	}
	for round := 0; round < 10; round++ {
		time.Sleep(250 * time.Millisecond) // fresh storage figures
		// A loaded machine can move leadership between rounds.
		l = c.leader(10 * time.Second)
		if _, err := c.repairRound(ctx); err != nil && !errors.Is(err, ErrNotLeader) {
			t.Fatal(err)
		}
		if lo, hi := spread(); float64(hi-lo) <= 0.3*float64(hi)+4100 {
			break
		}
	}
	lo, hi := spread()
	st, _ := fresh.bodies.Stats(ctx)
	if st.Bodies == 0 || float64(hi-lo) > 0.3*float64(hi)+4100 {
		t.Fatalf("after rebalance: new node has %d bodies; used bytes from %d to %d", st.Bodies, lo, hi)
	}
	assertRedundant(t, c, l, hashes, 2)
	t.Logf("new node holds %d bodies; used bytes per node %d..%d", st.Bodies, lo, hi)
}

// TestRepairResumesAfterLeaderCrash kills the leader in the middle of a
// repair. With R=3 on five nodes, losing the removed node and the leader
// leaves every body a live replica, and the new leader completes the
// repair to three live copies.
func TestRepairResumesAfterLeaderCrash(t *testing.T) {
	c := repairCluster(t, 5, func(cfg *Config) {
		cfg.RepairRate = 20000 // bytes/s: a round takes seconds
		cfg.RepairInterval = 300 * time.Millisecond
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 3, WriteQuorum: 2, CommandEncoding: fsm.NewestEncoding}})
	hashes := deliverN(t, l, 12, 3000)
	victim := busiestFollower(t, c, l, hashes)
	victim.Kill()
	delete(c.nodes, victim.ID())
	if err := l.Remove(ctxT(t, 10*time.Second), victim.ID(), false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the repair to start", func() bool { return l.repair.get().Repaired > 0 })
	l.Kill()
	delete(c.nodes, l.ID())
	next := c.leader(10 * time.Second)
	waitFor(t, 90*time.Second, "every body on three live replicas", func() bool {
		for _, h := range hashes {
			b, _ := next.State().Body(h.String())
			live := 0
			for _, id := range b.Replicas {
				if c.nodes[id] != nil {
					live++
				}
			}
			if live < 3 {
				return false
			}
		}
		return true
	})
	t.Logf("new leader %s: %+v", next.ID(), next.repair.get())
}

// oneBodyCluster starts three nodes and delivers one body through the
// leader; it returns the body and its record.
func oneBodyCluster(t *testing.T) (*testCluster, *Node, storage.Hash, fsm.Body) {
	t.Helper()
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	h := deliverN(t, l, 1, 3000)[0]
	rec, err := l.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	return c, l, h, rec
}

// TestVerifySaysWhyAReplicaFailed: a damaged copy makes its body short,
// and the verification names the node and the reason.
func TestVerifySaysWhyAReplicaFailed(t *testing.T) {
	c, l, h, rec := oneBodyCluster(t)
	ctx := ctxT(t, 20*time.Second)
	holder := c.nodes[rec.Replicas[0]]
	if err := holder.bodies.Damage(ctx, h); err != nil {
		t.Fatal(err)
	}
	p, err := l.VerifyAll(ctx, func(VerifyProgress) {})
	if err != nil {
		t.Fatal(err)
	}
	if p.Short != 1 {
		t.Fatalf("verify: %+v", p)
	}
	why := p.FirstErrors[holder.ID()]
	if p.Unverified[holder.ID()] == 1 && len(p.Unverified) == 1 && strings.Contains(why, "corrupt") {
		t.Logf("%s: %s", holder.ID(), why)
		return
	}
	// The holder, asked to verify its copy, reports it corrupt itself
	// (verify.go), and the leader unlists it: when that commit lands
	// before the leader counts, the body is short with no replica left to
	// name, and the holder's report is what says why.
	// (A repair may already be copying the body back to it.)
	if len(p.Unverified) != 0 || holder.corrupt.Load() == 0 || len(p.ShortBodies) != 1 || p.ShortBodies[0] != h.String() {
		t.Fatalf("verify: %+v; holder %s reported %d corrupt copies", p, holder.ID(), holder.corrupt.Load())
	}
}

// TestAuditUnlistsBodiesALostStoreNoLongerHolds: a follower comes back
// with an empty body store (a replaced disk, or removed, wiped and
// re-joined under the same ID). It must not count as a replica of the
// bodies it lost: its start-up audit unlists them, and repair brings
// every body back to R real copies.
func TestAuditUnlistsBodiesALostStoreNoLongerHolds(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 12, 2000)
	f := busiestFollower(t, c, l, hashes)
	cfg := f.cfg
	f.Close()
	delete(c.nodes, cfg.ID)
	if err := os.RemoveAll(filepath.Join(cfg.DataDir, "bodies")); err != nil {
		t.Fatal(err)
	}
	back := c.startWith(cfg)
	waitFor(t, 15*time.Second, "the audit to unlist the lost copies", func() bool {
		for _, h := range hashes {
			if b, err := l.State().Body(h.String()); err != nil || slices.Contains(b.Replicas, back.ID()) {
				if err == nil && back.missing.Load() == 0 {
					return false
				}
				if has, _, _ := back.bodies.Has(context.Background(), h); !has {
					return false
				}
			}
		}
		return true
	})
	if back.missing.Load() == 0 {
		t.Fatal("the audit found nothing missing")
	}
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.repairRound(ctx); err != nil {
		t.Fatal(err)
	}
	assertRedundant(t, c, l, hashes, 2)
	p, err := l.VerifyAll(ctx, func(VerifyProgress) {})
	if err != nil || p.Short != 0 {
		t.Fatalf("verify after the audit and repair: %+v %v", p, err)
	}
}

// A move whose placement the directory refuses (here: the target is not a
// member) keeps the source's copy: the record still lists it.
func TestRefusedMoveKeepsTheSourceCopy(t *testing.T) {
	c := repairCluster(t, 3, nil)
	l := c.leader(5 * time.Second)
	h := deliverN(t, l, 1, 100)[0]
	ctx := ctxT(t, 10*time.Second)
	l.Barrier(ctx)
	b, err := l.State().Body(h.String())
	if err != nil {
		t.Fatal(err)
	}
	live, err := l.liveness()
	if err != nil {
		t.Fatal(err)
	}
	from := b.Replicas[0]
	var spare fsm.Member
	for id, m := range live.members {
		if !slices.Contains(b.Replicas, id) {
			spare = m
		}
	}
	// A target the gate and fetch accept (a real node, answering as
	// itself) that the directory no longer knows.
	mustApply(t, l, &fsm.MemberRemove{ID: spare.ID})
	err = l.move(ctx, live, fsm.BodyRecord{Hash: h.String(), Body: b}, from, spare.ID)
	if !errors.Is(err, errMoot) {
		t.Fatalf("refused move: %v, want errMoot", err)
	}
	after, _ := l.State().Body(h.String())
	if !slices.Equal(after.Replicas, b.Replicas) {
		t.Fatalf("replicas changed: %v -> %v", b.Replicas, after.Replicas)
	}
	if err := c.nodes[from].bodies.Verify(ctx, h); err != nil {
		t.Fatalf("the source's copy after a refused move: %v", err)
	}
}

// Redundancy before balance: with a body short of R and a new, empty node
// to fill, a round repairs and moves nothing; the next one rebalances.
// (A long rebalance used to hold every later round's repair back: jepsen
// run 16 had 26,246 bodies on one copy for four minutes.)
func TestRepairComesBeforeRebalance(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) { cfg.RebalanceSpread = 0.3 })
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 20, 4000)
	c.start("n4", false, l.AdminAddr())
	ctx := ctxT(t, 60*time.Second)
	waitFor(t, 10*time.Second, "the new node polled", func() bool { return l.placement.downFor("n4", l.started) < 300*time.Millisecond })
	time.Sleep(250 * time.Millisecond) // fresh storage figures
	b, err := l.State().Body(hashes[0].String())
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, l, &fsm.BodyPlace{Hash: hashes[0].String(), Remove: b.Replicas[:1]})

	st, err := c.repairRound(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Repaired != 1 || st.Moved != 0 {
		t.Fatalf("round with a short body: repaired %d, moved %d; want 1 and 0", st.Repaired, st.Moved)
	}
	if st, err = c.repairRound(ctx); err != nil || st.Moved == 0 {
		t.Fatalf("next round: %+v, %v; want bodies moved to the new node", st, err)
	}
	assertRedundant(t, c, l, hashes, 2)
}

// Removing a live node that holds the only healthy copy of some bodies
// (R=1 here; with R=2, a node whose co-replica is down) would leave those
// bodies unrepairable: repair copies only from members, and the removed
// node's copies stop counting. Unforced, the removal is refused and the
// bodies stay readable; forced, it goes ahead.
func TestRemoveRefusesToDropTheLastCopy(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
	})
	l := c.leader(time.Second)
	f := c.followers(l)[0]
	hashes := deliverN(t, f, 3, 500)
	for _, h := range hashes {
		b, err := l.State().Body(h.String())
		if err != nil || !slices.Equal(b.Replicas, []string{f.ID()}) {
			t.Fatalf("body %s: %+v %v, want listed on %s only", h, b, err, f.ID())
		}
	}
	err := l.Remove(ctxT(t, 10*time.Second), f.ID(), false)
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "only") {
		t.Fatalf("removing the node with the only copies: %v", err)
	}
	if m, _ := l.State().Members(); len(m) != 3 {
		t.Fatalf("members after a refused removal: %+v", m)
	}
	// Once another copy exists, the removal goes ahead.
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 1, CommandEncoding: fsm.NewestEncoding, MaxVoters: fsm.DefaultMaxVoters}})
	if _, err := c.repairRound(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := l.Remove(ctxT(t, 10*time.Second), f.ID(), false); err != nil {
		t.Fatalf("removal once every body has another copy: %v", err)
	}
}

// A forced removal skips the check: the operator knows the node is gone.
func TestForcedRemoveDropsTheLastCopy(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
	})
	l := c.leader(time.Second)
	f := c.followers(l)[0]
	deliverN(t, f, 1, 500)
	if err := l.Remove(ctxT(t, 10*time.Second), f.ID(), true); err != nil {
		t.Fatalf("forced removal: %v", err)
	}
}

// A body committed between the removal's check and the removal of the
// member record may list the removed node alone (R=1 here: every message
// the node receives): a delivery can still choose it until its record is
// gone. The removal looks again once no delivery can, and is refused,
// with the record back, rather than strand that body.
func TestRemoveRefusesABodyWrittenDuringTheCheck(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
	})
	l := c.leader(time.Second)
	f := c.followers(l)[0]
	var hashes []storage.Hash
	l.afterBodyCheck = func() { hashes = deliverN(t, f, 1, 500) }
	err := l.Remove(ctxT(t, 20*time.Second), f.ID(), false)
	if len(hashes) != 1 {
		t.Fatal("the delivery between the check and the removal did not run")
	}
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "only") {
		t.Fatalf("removing the node that took a body's only copy during the check: %v", err)
	}
	if m, _ := l.State().Members(); len(m) != 3 {
		t.Fatalf("members after a refused removal: %+v", m)
	}
	if b, err := l.State().Body(hashes[0].String()); err != nil || !slices.Equal(b.Replicas, []string{f.ID()}) {
		t.Fatalf("body %s: %+v %v", hashes[0], b, err)
	}
	// The node is still a member that takes mail.
	l.afterBodyCheck = nil
	deliverN(t, f, 1, 600)
}

// A co-replica that stopped answering a moment ago still counts as alive
// for repair (RepairGrace), but its copy cannot be read: removing the
// node with the other copy would leave the body on a down node alone,
// lost if that node does not come back. The removal counts only replicas
// on nodes that answer now.
func TestRemoveDoesNotCountADownReplica(t *testing.T) {
	c := repairCluster(t, 4, func(cfg *Config) { cfg.RepairGrace = time.Hour })
	l := c.leader(time.Second)
	f := c.followers(l)[0]
	var down *Node
	for _, h := range deliverN(t, f, 10, 500) {
		b, err := l.State().Body(h.String())
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range b.Replicas {
			if id != f.ID() && id != l.ID() {
				down = c.nodes[id]
			}
		}
		if down != nil {
			break
		}
	}
	if down == nil {
		t.Skip("no body placed on a follower besides the sender")
	}
	down.Close()
	delete(c.nodes, down.ID())
	err := l.Remove(ctxT(t, 20*time.Second), f.ID(), false)
	if !errors.Is(err, fsm.ErrInvalid) || !strings.Contains(err.Error(), "only") {
		t.Fatalf("removing the node whose co-replica is down: %v", err)
	}
	if m, _ := l.State().Members(); len(m) != 4 {
		t.Fatalf("members after a refused removal: %+v", m)
	}
}
