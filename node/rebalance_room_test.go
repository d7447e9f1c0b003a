package node

import (
	"testing"
	"time"
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
