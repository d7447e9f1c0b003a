package node

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

// A flood of /readyz from strangers costs about one read-index round
// per readyFresh, not one per request (or per batch of them).
func TestReadyzFloodBounded(t *testing.T) {
	c := newTestCluster(t, 2)
	c.leader(5 * time.Second)
	f := c.follower()
	waitFor(t, 5*time.Second, "readyz", func() bool { code, _ := adminDo(t, f, "GET", "/readyz", "", ""); return code == 200 })
	before := testutilCounter(f.metrics.readRounds)
	const flood = time.Second
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers, notReady := 0, 0
	end := time.Now().Add(flood)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(end) {
				resp, err := client.Get("http://" + f.AdminAddr() + "/readyz")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				mu.Lock()
				answers++
				if resp.StatusCode != http.StatusOK {
					notReady++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rounds := testutilCounter(f.metrics.readRounds) - before
	t.Logf("%d answers (%d not ready) cost %v read-index rounds in %v", answers, notReady, rounds, flood)
	if notReady > 0 {
		t.Errorf("%d of %d answers said not ready", notReady, answers)
	}
	if limit := float64(flood/readyFresh) + 2; rounds > limit {
		t.Errorf("%v read-index rounds for %d answers in %v, want at most %v", rounds, answers, flood, limit)
	}
}

// The shared answer still follows a change of state: a follower whose
// leader is gone says so once a check finds it (the check waits up to
// readyTimeout for a leader, as a request's own barrier did before).
func TestReadyzFollowsLeaderLoss(t *testing.T) {
	c := newTestCluster(t, 2)
	l := c.leader(5 * time.Second)
	f := c.follower()
	waitFor(t, 5*time.Second, "readyz", func() bool { code, _ := adminDo(t, f, "GET", "/readyz", "", ""); return code == 200 })
	l.Kill()
	delete(c.nodes, l.ID())
	gone := time.Now()
	waitFor(t, 5*time.Second, "the leader gone", func() bool {
		_, err := f.leaderAddr()
		return err != nil
	})
	noticed := time.Now()
	waitFor(t, readyTimeout+2*readyFresh, "readyz 503", func() bool { code, _ := adminDo(t, f, "GET", "/readyz", "", ""); return code == 503 })
	t.Logf("leader gone; noticed after %v, readyz 503 after %v more", noticed.Sub(gone), time.Since(noticed))
}

// readyzAs returns /readyz's status and decoded body, with the token or
// without it.
func readyzAs(t *testing.T, n *Node, token string) (int, map[string]any) {
	t.Helper()
	code, body := adminDo(t, n, "GET", "/readyz", token, "")
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("readyz body %q: %v", body, err)
	}
	return code, v
}

// /readyz tells a caller without the token only ready or not: the leader's
// ID, the applied index (how busy the cluster is) and the reason it is
// not ready (which names members' cluster addresses) are the operator's.
func TestReadyzTellsStrangersNoMore(t *testing.T) {
	c := newTestCluster(t, 2)
	l := c.leader(5 * time.Second)
	f := c.follower()
	waitFor(t, 5*time.Second, "readyz", func() bool { code, _ := adminDo(t, f, "GET", "/readyz", "", ""); return code == 200 })
	if _, v := readyzAs(t, f, ""); len(v) != 1 || v["status"] != "ready" {
		t.Errorf("stranger's ready answer: %v, want only the status", v)
	}
	if _, v := readyzAs(t, f, string(testSecret)); v["leader"] != l.ID() || v["applied_index"] == nil {
		t.Errorf("operator's ready answer: %v, want the leader and the applied index", v)
	}
	l.Kill()
	delete(c.nodes, l.ID())
	waitFor(t, readyTimeout+5*time.Second, "readyz 503", func() bool { code, _ := adminDo(t, f, "GET", "/readyz", "", ""); return code == 503 })
	if _, v := readyzAs(t, f, ""); v["message"] != "not ready" {
		t.Errorf("stranger's not-ready answer: %v, want no reason", v)
	}
	if _, v := readyzAs(t, f, string(testSecret)); v["message"] == "not ready" || v["message"] == "" {
		t.Errorf("operator's not-ready answer: %v, want the reason", v)
	}
}
