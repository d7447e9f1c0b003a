package node

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRebalanceSkipsANodeWithoutRoom: the member with the fewest body
// bytes has no room for any (its disk is down to the reserve, full of
// something else). It cannot be the rebalance's destination: every
// move to it is refused, and each round used to stop at that first
// refusal, so the other nodes were never balanced. Here n1 holds
// nearly everything, n3 is full and empty of bodies, and n2 has room.
func TestRebalanceSkipsANodeWithoutRoom(t *testing.T) {
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
		if cfg.ID == "n3" {
			cfg.MinFreeBytes = 1 << 62 // more than any disk has
		}
	})
	deliverN(t, c.nodes["n1"], 20, 4000)
	deliverN(t, c.nodes["n2"], 1, 4001) // other content than n1's
	ctx := ctxT(t, 60*time.Second)
	for _, n := range c.nodes {
		waitFor(t, 5*time.Second, n.ID()+" sees n3 full", func() bool { return n.ID() == "n3" || n.placement.full("n3") })
	}
	time.Sleep(250 * time.Millisecond) // fresh storage figures
	st, err := c.repairRound(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := c.nodes["n2"].bodies.Stats(ctx)
	if st.Moved == 0 || n2.Bodies < 2 {
		t.Fatalf("rebalance with a full node: moved %d, n2 holds %d bodies; want bodies moved from n1 to n2", st.Moved, n2.Bodies)
	}
}

// TestRebalanceEvensTheShareOfDisksOfDifferentSizes: n1's disk is small
// and n2's large, and each holds the same body bytes. Evening out bytes
// saw nothing to do, and every delivery through n1 kept filling its disk
// towards the reserve (then refused, 452) while n2's stood nearly empty.
// Where the members' filesystems differ in size, rebalance evens out the
// share of each one's room for bodies that its bodies use: n1 gives
// bodies to n2.
func TestRebalanceEvensTheShareOfDisksOfDifferentSizes(t *testing.T) {
	const reserve = 1 << 20
	disks := map[string]*roomFS{"n1": {total: 64 << 20}, "n2": {total: 64 << 30}}
	disks["n1"].avail.Store(reserve + 1<<20) // 1 MiB of room
	disks["n2"].avail.Store(reserve + 32<<30)
	c := repairCluster(t, 2, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 1, WriteQuorum: 1}
		cfg.MinFreeBytes = reserve
		disks[cfg.ID].FS = vfs.Default
		cfg.BodyFS = disks[cfg.ID]
	})
	deliverN(t, c.nodes["n1"], 20, 4000)
	deliverN(t, c.nodes["n2"], 20, 4001) // as many bytes on n2
	ctx := ctxT(t, 30*time.Second)
	for _, n := range c.nodes {
		peer := "n1"
		if n.ID() == "n1" {
			peer = "n2"
		}
		waitFor(t, 5*time.Second, n.ID()+" polls "+peer, func() bool { st, ok := n.placement.get(peer); return ok && st.Bodies == 20 })
	}
	st, err := c.repairRound(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n2, _ := c.nodes["n2"].bodies.Stats(ctx)
	if st.Moved < 15 || n2.Bodies < 35 {
		t.Fatalf("moved %d bodies, n2 holds %d; want most of n1's moved to the large disk", st.Moved, n2.Bodies)
	}
}

// On one filesystem shared by every member (tests, `make run`) the
// share says nothing: rebalance evens out body bytes, as it does where
// every member's disk is the same size, or a member's is not known.
func TestRebalancePlan(t *testing.T) {
	const gib = 1 << 30
	load := func(id string, used int64, room, total uint64) memberLoad {
		return memberLoad{id: id, used: used, room: room, total: total, known: true}
	}
	for _, tc := range []struct {
		name  string
		loads []memberLoad
		want  rebalancePlan // zero: nothing to do
	}{
		{"one filesystem, even bytes", []memberLoad{load("a", 100, 1*gib, 10*gib), load("b", 100, 1*gib, 10*gib)}, rebalancePlan{}},
		{"one filesystem, uneven bytes", []memberLoad{load("a", 1000, 1*gib, 10*gib), load("b", 200, 1*gib, 10*gib)}, rebalancePlan{"a", "b", 400}},
		{"one filesystem, a larger reserve on one", []memberLoad{load("a", 100, 1, 10*gib), load("b", 100, 1*gib, 10*gib)}, rebalancePlan{}},
		{"disks of one size", []memberLoad{load("a", 1000, 1*gib, 10*gib), load("b", 200, 5*gib, 10*gib)}, rebalancePlan{"a", "b", 400}},
		{"disks of different sizes, even bytes", []memberLoad{load("a", gib, gib, 4*gib), load("b", gib, 7*gib, 10*gib)}, rebalancePlan{"a", "b", gib * 3 / 5}},
		{"disks of different sizes, even shares", []memberLoad{load("a", gib, gib, 4*gib), load("b", 2*gib, 2*gib, 10*gib)}, rebalancePlan{}},
		{"less room than the gap", []memberLoad{load("a", 1000, 1*gib, 10*gib), load("b", 200, 100, 10*gib)}, rebalancePlan{"a", "b", 100}},
		{"a member not polled yet", []memberLoad{load("a", 1000, 1*gib, 10*gib), {id: "b", used: 200}}, rebalancePlan{}},
		{"the emptiest has no room", []memberLoad{load("a", 1000, 1*gib, 10*gib), load("b", 100, 1*gib, 10*gib), load("c", 0, 0, 10*gib)}, rebalancePlan{"a", "b", 450}},
	} {
		got, _ := planRebalance(tc.loads, 0.2)
		if got != tc.want {
			t.Errorf("%s: plan %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
