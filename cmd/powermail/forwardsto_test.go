package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestForwardsToListsPastOnePage: forward ls --target stopped at the
// node's largest page (10,000) and exited 1, and the rest could not be
// listed at all. It now pages through them: here 10,050 forwards name
// one mailbox, and every one is listed once, exit 0.
func TestForwardsToListsPastOnePage(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "mailbox", "add", "box@example.com", "--no-password", "--addr", p.admin)
	const n = maxForwardsTo + 50
	start := time.Now()
	addForwards(t, p.admin, n, "box@example.com")
	t.Logf("%d forwards added in %v", n, time.Since(start).Round(time.Millisecond))
	out := mustCLI(t, "forward", "ls", "--target", "box@example.com", "--json", "--addr", p.admin)
	var list []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("forward ls --target --json: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range list {
		seen[f.Address] = true
	}
	if len(list) != n || len(seen) != n {
		t.Fatalf("forward ls --target listed %d forwards (%d distinct), want %d", len(list), len(seen), n)
	}
}

// addForwards adds n forwards f0@example.com... to target through the
// admin API, many at once, so that raft commits them in large batches.
func addForwards(t *testing.T, addr string, n int, target string) {
	t.Helper()
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				body := fmt.Sprintf(`{"address":"f%d@example.com","targets":[%q]}`, i, target)
				req, _ := http.NewRequest("POST", "http://"+addr+"/v1/forwards", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+cliSecret)
				resp, err := http.DefaultClient.Do(req)
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("forward %d: %s", i, resp.Status)
					}
				}
				if err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}
