package node

import (
	"testing"
	"time"

	"powermail/fsm"
)

// TestTrimIsPacedByTheRepairRate: lowering R makes every body's extra
// copy go, and a trim first reads back, in full, each copy that stays.
// Over a whole store that is more reading than any repair, so it goes
// through the repair rate as copies do, rather than at disk speed while
// mail waits. Here 12 bodies of 8 KiB, each with two copies to verify,
// at 64 KiB/s: at least a second.
func TestTrimIsPacedByTheRepairRate(t *testing.T) {
	const rate = 64 << 10
	c := repairCluster(t, 3, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 3, WriteQuorum: 3}
		cfg.RepairRate = rate
	})
	l := c.leader(time.Second)
	hashes := deliverN(t, l, 12, 8<<10)
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2,
		CommandEncoding: fsm.NewestEncoding, MaxVoters: fsm.DefaultMaxVoters}})
	ctx := ctxT(t, 60*time.Second)
	began := time.Now()
	st, err := c.repairRound(ctx)
	took := time.Since(began)
	if err != nil {
		t.Fatal(err)
	}
	if st.Trimmed != int64(len(hashes)) {
		t.Fatalf("trimmed %d of %d bodies", st.Trimmed, len(hashes))
	}
	if least := time.Duration(len(hashes)*2*(8<<10)) * time.Second / rate; took < least*3/4 {
		t.Fatalf("a round verified %d KiB in %v, faster than the repair rate allows (%v)", len(hashes)*2*8, took, least)
	}
	assertRedundant(t, c, l, hashes, 2)
}
