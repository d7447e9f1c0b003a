package node

import (
	"errors"
	"testing"

	"powermail/fsm"
)

// A join with an address no node could have is refused as invalid input
// before it reaches raft: taken in, it became a member that the others
// dial in vain and that cluster status lists for good.
func TestJoinRequestChecksAddresses(t *testing.T) {
	ok := []JoinRequest{
		{ID: "n4", ClusterAddr: "10.0.0.4:7000"},
		{ID: "n4", ClusterAddr: "node4.example:7000", AdminAddr: "node4.example:8000"},
		{ID: "n4", ClusterAddr: "[fd00::4]:7000", AdminAddr: "https://[fd00::4]:8000"},
		{ID: "n4", ClusterAddr: "10.0.0.4:7000", AdminAddr: "https://admin4.example"}, // the scheme's port
	}
	for _, r := range ok {
		if err := r.validate(); err != nil {
			t.Errorf("%+v refused: %v", r, err)
		}
	}
	bad := []JoinRequest{
		{ID: "n4", ClusterAddr: "10.0.0.4"},
		{ID: "n4", ClusterAddr: "10.0.0.4:99999"},
		{ID: "n4", ClusterAddr: "10.0.0.4:0"},
		{ID: "n4", ClusterAddr: "10.0.0.4:ssh"},
		{ID: "n4", ClusterAddr: ":7000"},
		{ID: "n4", ClusterAddr: "10.0.0.4:7000", AdminAddr: "notanaddr"},
		{ID: "n4", ClusterAddr: "10.0.0.4:7000", AdminAddr: "10.0.0.4:80000"},
		{ID: "n4", ClusterAddr: "10.0.0.4:7000", AdminAddr: "ftp://10.0.0.4:8000"},
		{ID: "n4", ClusterAddr: "10.0.0.4:7000", AdminAddr: "https://:8000"},
	}
	for _, r := range bad {
		var fe *fsm.Error
		if err := r.validate(); !errors.As(err, &fe) || fe.Kind != fsm.ErrInvalid {
			t.Errorf("%+v: %v, want invalid input", r, err)
		}
	}
}
