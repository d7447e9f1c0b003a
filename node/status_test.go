package node

import (
	"encoding/json"
	"net"
	"testing"
	"time"
)

// A node that does not answer has in its status only what the others
// know of it: its term, indexes and store figures are absent, not 0.
// A node that answers has every field, 0 included.
func TestStatusLeavesOutWhatAnUnreachableNodeCannotTell(t *testing.T) {
	l := newTestCluster(t, 1).leader(5 * time.Second)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ghost := ln.Addr().String()
	ln.Close()
	if err := l.Join(ctxT(t, 10*time.Second), JoinRequest{ID: "ghost", ClusterAddr: ghost}); err != nil {
		t.Fatal(err)
	}
	code, body := adminDo(t, l, "GET", "/v1/cluster/status", string(testSecret), "")
	var st struct{ Nodes []map[string]any }
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || len(st.Nodes) != 2 {
		t.Fatalf("status: %d %s", code, body)
	}
	measured := []string{"term", "commit_index", "applied_index", "bodies", "body_bytes", "free_bytes", "total_bytes", "corrupt", "missing"}
	for _, m := range st.Nodes {
		down := m["id"] == "ghost"
		if m["reachable"] != !down || m["cluster_addr"] == nil {
			t.Errorf("node %v: reachable %v, cluster_addr %v", m["id"], m["reachable"], m["cluster_addr"])
		}
		for _, f := range measured {
			if _, has := m[f]; has == down {
				t.Errorf("node %v (reachable %v) has %s: %v", m["id"], !down, f, has)
			}
		}
	}
}
