package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"powermail/node"
)

// redundancyFlags tune repair, rebalance, scrub and garbage collection.
type redundancyFlags struct {
	repairGrace, repairInterval time.Duration
	repairRate, scrubRate       int64
	repairBusyCopies            int
	rebalanceSpread             float64
	scrubInterval               time.Duration
	gcInterval, gcIdle          time.Duration
	peerPoll                    time.Duration
	faultInjection              bool
}

func (r *redundancyFlags) register(fl *pflag.FlagSet) {
	fl.DurationVar(&r.repairGrace, "repair-grace", node.DefaultRepairGrace, "how long a node may be unreachable before its body replicas are re-created elsewhere")
	fl.DurationVar(&r.repairInterval, "repair-interval", node.DefaultRepairInterval, "how often the leader checks the bodies' replicas (reading every body record only while something may be short, else hourly)")
	fl.Int64Var(&r.repairRate, "repair-rate", node.DefaultRepairRate, "bytes per second for repair and rebalance copies and trim checks")
	fl.IntVar(&r.repairBusyCopies, "repair-busy-copies", node.DefaultRepairBusyCopies, "repair and rebalance copies of bodies over 64 KiB at once while mail is being delivered; a smaller body counts a quarter (32 when quiet)")
	fl.Float64Var(&r.rebalanceSpread, "rebalance-spread", node.DefaultRebalance, "allowed (max-min)/max of body bytes across nodes before bodies move (of the share of each disk that bodies use, where disk sizes differ)")
	fl.DurationVar(&r.scrubInterval, "scrub-interval", node.DefaultScrubInterval, "pause between two passes that re-verify every local body")
	fl.Int64Var(&r.scrubRate, "scrub-rate", node.DefaultScrubRate, "bytes per second read by the scrub")
	fl.DurationVar(&r.gcInterval, "gc-interval", node.DefaultGCInterval, "how often the leader collects unreferenced bodies")
	fl.DurationVar(&r.gcIdle, "gc-idle", node.DefaultGCIdle, "a copy written more recently than this is never collected")
	fl.DurationVar(&r.peerPoll, "peer-poll-interval", 10*time.Second, "how often each node polls its peers' storage figures")
	fl.BoolVar(&r.faultInjection, "enable-fault-injection", false, "enable the admin API's fault endpoints (tests only)")
}

// validate refuses values that would panic a ticker after start, or make
// upkeep work against itself.
func (r *redundancyFlags) validate() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--repair-interval", r.repairInterval}, {"--repair-grace", r.repairGrace}, {"--scrub-interval", r.scrubInterval},
		{"--gc-interval", r.gcInterval}, {"--gc-idle", r.gcIdle}, {"--peer-poll-interval", r.peerPoll}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v: must not be negative (0: the default)", d.flag, d.v)
		}
	}
	if r.repairGrace > 0 && r.peerPoll > 0 && r.repairGrace < 3*r.peerPoll {
		return fmt.Errorf("--repair-grace %v: must be at least three --peer-poll-interval (%v), or live peers look down between polls", r.repairGrace, r.peerPoll)
	}
	return nil
}

func (r *redundancyFlags) apply(cfg *node.Config) {
	cfg.RepairGrace, cfg.RepairInterval, cfg.RepairRate = r.repairGrace, r.repairInterval, r.repairRate
	cfg.RebalanceSpread, cfg.ScrubInterval, cfg.ScrubRate = r.rebalanceSpread, r.scrubInterval, r.scrubRate
	cfg.GCInterval, cfg.GCIdle, cfg.PeerPollInterval = r.gcInterval, r.gcIdle, r.peerPoll
	cfg.FaultInjection, cfg.RepairBusyCopies = r.faultInjection, r.repairBusyCopies
}
