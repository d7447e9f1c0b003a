package node

import (
	"testing"

	"powermail/fsm"
	"powermail/storage"
)

func TestPlacementPrefersFreeSpace(t *testing.T) {
	var p placement
	p.set("small", storage.Stats{FSAvail: 10 << 30})
	p.set("big", storage.Stats{FSAvail: 1000 << 30})
	first := map[string]int{}
	for i := 0; i < 2000; i++ {
		peers := []fsm.Member{{ID: "small"}, {ID: "big"}, {ID: "unknown"}}
		p.order(peers)
		first[peers[0].ID]++
		if len(peers) != 3 || peers[0].ID == peers[1].ID || peers[1].ID == peers[2].ID {
			t.Fatalf("order lost or duplicated a peer: %+v", peers)
		}
	}
	// "big" has 100x the free space of "small"; "unknown" weighs like the
	// median of the known peers.
	if first["big"] < first["small"]*5 || first["small"] == 0 && first["unknown"] == 0 {
		t.Fatalf("first choices %v", first)
	}
}
