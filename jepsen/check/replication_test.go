package check

import "testing"

func TestReplicationValid(t *testing.T) {
	r := CheckReplication([]BodyReplicas{
		{Hash: "h1", Nodes: []string{"n1", "n2", "n3"}, R: 3},
		{Hash: "h2", Nodes: []string{"n1", "n2", "n3", "n4"}, R: 3},
		{Hash: "h3", Nodes: []string{"n2"}, R: 2},
		{Hash: "h3", Nodes: []string{"n3", "n2"}, R: 2}, // merged with the line above
	}, Options{})
	wantValid(t, r)
	wantCounts(t, r, map[string]int{"bodies": 3, "replicated": 3, "over_replicated": 1})
}

func TestReplicationViolations(t *testing.T) {
	r := CheckReplication([]BodyReplicas{
		{Hash: "h1", Nodes: []string{"n1", "n1", ""}, R: 2}, // one distinct node
		{Hash: "h2", Nodes: nil, R: 3},
		{Hash: "h3", Nodes: []string{"n1", "n2"}, R: 2},
		{Hash: "h4", Nodes: []string{"n1"}, R: 0},
	}, Options{})
	wantInvalid(t, r, map[string]int{CountUnderReplicated: 1, CountMissing: 1, CountMalformed: 1, "replicated": 1})
}

func TestReplicationVerifyShort(t *testing.T) {
	// Listed and held on two nodes, but one copy fails its checksum: the
	// cluster's verification says so, and that is a violation.
	r := CheckReplication([]BodyReplicas{
		{Hash: "h1", Nodes: []string{"n1", "n2"}, R: 2},
		{Hash: "h2", Nodes: []string{"n1", "n3"}, R: 2, Short: true},
	}, Options{})
	wantInvalid(t, r, map[string]int{CountVerifyShort: 1, CountUnderReplicated: 0, "replicated": 1})
}
