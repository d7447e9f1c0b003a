package node

import (
	"encoding/json"
	"net"
	"strings"
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

// A node removed while it runs says so in its status, with the leader
// and health its former peers answer, not "no leader"; taken back in
// with a join (its data directory as it is), it is a member again.
func TestStatusOfARemovedNodeSaysSo(t *testing.T) {
	c := newTestCluster(t, 3)
	l := c.leader(5 * time.Second)
	gone := c.followers(l)[0]
	if err := l.Remove(ctxT(t, 5*time.Second), gone.ID(), false); err != nil {
		t.Fatal(err)
	}
	type view struct {
		Leader, Health, Self string
		Removed              bool
		Nodes                []struct{ ID string }
	}
	statusOf := func(n *Node) view {
		code, body := adminDo(t, n, "GET", "/v1/cluster/status", string(testSecret), "")
		var v view
		if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil {
			t.Fatalf("status of %s: %d %s", n.ID(), code, body)
		}
		return v
	}
	// Right after the removal it may still follow the leader for a
	// heartbeat timeout; the answer must not change once that passes.
	time.Sleep(2 * c.tune.HeartbeatTimeout)
	v := statusOf(gone)
	if !v.Removed || v.Self != gone.ID() || v.Leader != l.ID() || v.Health != "healthy" || len(v.Nodes) != 2 {
		t.Fatalf("removed %s says %+v, want removed, leader %s, healthy, 2 nodes", gone.ID(), v, l.ID())
	}
	if v := statusOf(l); v.Removed || v.Self != l.ID() {
		t.Fatalf("a member says %+v", v)
	}
	// Reads and writes through it waited out the client's timeout (no
	// leader ever answers it) while its status said healthy: they are
	// refused at once, naming what happened and where to go instead.
	for _, req := range [][3]string{{"GET", "/v1/domains", ""}, {"POST", "/v1/domains", `{"name":"x.org"}`}} {
		start := time.Now()
		code, body := adminDo(t, gone, req[0], req[1], string(testSecret), req[2])
		if code != 503 || !strings.Contains(body, `"error":"removed"`) || !strings.Contains(body, gone.ID()) || time.Since(start) > time.Second {
			t.Errorf("%s %s through the removed node: %d %s after %v", req[0], req[1], code, body, time.Since(start))
		}
	}
	if err := l.Join(ctxT(t, 10*time.Second), JoinRequest{ID: gone.ID(), ClusterAddr: gone.ClusterAddr(), AdminAddr: gone.AdminAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, gone.ID()+" a member again", func() bool {
		v := statusOf(gone)
		return !v.Removed && v.Leader == l.ID() && v.Health == "healthy" && len(v.Nodes) == 3
	})
	if code, body := adminDo(t, gone, "GET", "/v1/domains", string(testSecret), ""); code != 200 {
		t.Errorf("domains through %s, a member again: %d %s", gone.ID(), code, body)
	}
}
