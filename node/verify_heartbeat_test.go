package node

import (
	"bufio"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// TestVerifySendsLinesWhileCounting: storage verify counts every body
// record before it checks the first, and sent nothing meanwhile, so a
// CLI with a short --timeout gave up on a large store while the node
// was at work. The stream now carries a counting line every
// verifyHeartbeat from the start of the count, then the checks' lines.
func TestVerifySendsLinesWhileCounting(t *testing.T) {
	_, l, _, _ := oneBodyCluster(t)
	release := make(chan struct{})
	hold := func() { // the count takes as long as the test wants
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}
	l.onVerifyCount.Store(&hold)
	req, _ := http.NewRequestWithContext(ctxT(t, 30*time.Second), "POST", "http://"+l.AdminAddr()+"/v1/storage/verify", nil)
	req.Header.Set("Authorization", "Bearer "+string(testSecret))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() (VerifyProgress, string) {
		t.Helper()
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		var p VerifyProgress
		if err := json.Unmarshal(lines.Bytes(), &p); err != nil {
			t.Fatalf("line %q: %v", lines.Text(), err)
		}
		return p, lines.Text()
	}
	for i := range 3 {
		p, raw := next()
		if !p.Counting || p.Done != 0 || p.Finished || p.Error != "" {
			t.Fatalf("line %d while counting: %s", i, raw)
		}
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("three lines while counting took %v", took)
	}
	close(release)
	var last VerifyProgress
	counted := false
	for {
		p, raw := next()
		if p.Counting && counted {
			t.Fatalf("a counting line after the count: %s", raw)
		}
		counted = counted || !p.Counting
		last = p
		if p.Finished || p.Error != "" {
			break
		}
	}
	if !last.Finished || last.Counting || last.Done != 1 || last.Total != 1 || last.Short != 0 {
		t.Fatalf("the last line: %+v", last)
	}
	if lines.Scan() {
		t.Fatalf("a line after the last: %s", lines.Text())
	}
}
