package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A node that does not answer shows "-" in cluster status for what only
// it could tell, and has those fields absent (not 0) in --json.
func TestClusterStatusShowsDashesForAnUnreachableNode(t *testing.T) {
	p := startSolo(t)
	// Joined but never started: it does not answer (and joins as a
	// non-voter, so the quorum stays).
	mustCLI(t, "cluster", "join", "ghost", freeAddr(t), freeAddr(t), "--addr", p.admin)
	var ghost, solo []string
	for _, l := range strings.Split(mustCLI(t, "cluster", "status", "--addr", p.admin), "\n") {
		switch f := strings.Fields(l); {
		case len(f) > 0 && f[0] == "ghost":
			ghost = f
		case len(f) > 0 && f[0] == "solo":
			solo = f
		}
	}
	// ID ROLE SUFFRAGE CLUSTER ADMIN LAST-CONTACT, then TERM to MISSING.
	if len(ghost) != 14 || strings.Join(ghost[6:], " ") != "- - - - - - - -" {
		t.Errorf("unreachable node's row: %q", ghost)
	}
	if len(solo) < 14 || solo[9] != "0" {
		t.Errorf("reachable node's row (0 bodies): %q", solo)
	}
	var st struct{ Nodes []map[string]any }
	if err := json.Unmarshal([]byte(mustCLI(t, "cluster", "status", "--json", "--addr", p.admin)), &st); err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Nodes {
		_, hasCommit := m["commit_index"]
		_, hasBodies := m["bodies"]
		if down := m["id"] == "ghost"; hasCommit == down || hasBodies == down {
			t.Errorf("--json node %v: commit_index given %v, bodies given %v", m["id"], hasCommit, hasBodies)
		}
	}
}
