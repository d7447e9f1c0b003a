package node

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRepairLeavesAMemberWithoutRoomAlone: with R=3 on three nodes and
// n3 at its free-space reserve, every body delivered is short, and n3 is
// the only member that lacks it. Repair used to try a copy to n3 for
// every such body in every round (each refused, with a warning), and,
// since a copy might go somewhere, the bodies kept periodic rounds
// scanning every record. Now a member that reported no room is no
// repair target, and a body that can go nowhere else is settled; once
// n3 reports room again, the next periodic round scans and copies.
func TestRepairLeavesAMemberWithoutRoomAlone(t *testing.T) {
	const reserve = 64 << 20
	space := &roomFS{FS: vfs.Default}
	space.avail.Store(reserve) // no room above the reserve
	var copyFailures atomic.Int64
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 3, WriteQuorum: 2}
		cfg.Logger = slog.New(countingHandler{cfg.Logger.Handler(), "repair copy failed", &copyFailures})
		if cfg.ID == "n3" {
			cfg.MinFreeBytes, cfg.BodyFS = reserve, space
		}
	})
	for _, id := range []string{"n1", "n2"} {
		waitFor(t, 5*time.Second, id+" sees n3 full", func() bool { return c.nodes[id].placement.full("n3") })
	}
	// Through a follower: the leader itself never tries n3, which would
	// keep it from repair targets for a while (peerHealth) and hide the
	// attempts.
	l := c.leader(time.Second)
	via := c.nodes["n1"]
	if via == l {
		via = c.nodes["n2"]
	}
	hashes := deliverN(t, via, 4, 3000)
	ctx := ctxT(t, 30*time.Second)
	if !roundScanned(t, ctx, l) {
		t.Fatal("the first periodic round did not scan")
	}
	if st := l.repair.get(); st.UnderReplicated != 4 || st.Repaired != 0 {
		t.Fatalf("with the only member lacking the bodies full: %+v, want 4 short and none repaired", st)
	}
	if k := copyFailures.Load(); k != 0 {
		t.Fatalf("repair tried %d copies to the member without room", k)
	}
	if roundScanned(t, ctx, l) {
		t.Fatal("a periodic round scanned again, although no body could go anywhere")
	}

	// n3 has room again: the next periodic round scans and copies.
	space.avail.Store(reserve + 1<<30)
	waitFor(t, 5*time.Second, "the leader sees room on n3", func() bool { return !l.reportedFull("n3") })
	if !roundScanned(t, ctx, l) {
		t.Fatal("a periodic round skipped the scan after n3 reported room")
	}
	assertRedundant(t, c, l, hashes, 3)
}

// roomFS reports avail bytes free on the body store's filesystem, which
// a test changes while the node runs, and total bytes in all (0: the
// real size); everything else is the real disk.
type roomFS struct {
	vfs.FS
	avail atomic.Uint64
	total uint64
}

func (f *roomFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	du, err := f.FS.GetDiskUsage(path)
	du.AvailBytes = f.avail.Load()
	if f.total != 0 {
		du.TotalBytes = f.total
	}
	return du, err
}

// countingHandler counts the log records with message msg.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return countingHandler{h.Handler.WithAttrs(attrs), h.msg, h.n}
}

func (h countingHandler) WithGroup(name string) slog.Handler {
	return countingHandler{h.Handler.WithGroup(name), h.msg, h.n}
}
