package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRedundancyThroughTheBinary walks a four-node cluster through node
// loss, a leader crash during repair, a join, corruption and deletion,
// with the binary and its CLI only.
func TestRedundancyThroughTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of cluster life; skipped with -short")
	}
	flags := []string{"--repair-grace", "2s", "--repair-interval", "300ms", "--peer-poll-interval", "200ms",
		"--gc-interval", "500ms", "--gc-idle", "1s", "--repair-rate", "150000", "--rebalance-spread", "0.5",
		"--enable-fault-injection"}
	ps := startMailClusterN(t, 4, flags...)
	var fifth *proc
	t.Cleanup(func() { // on failure, what the nodes warned about
		if !t.Failed() {
			return
		}
		for _, p := range append(ps, fifth) {
			if p == nil || p.log == nil {
				continue
			}
			for _, line := range strings.Split(p.log.String(), "\n") {
				if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
					t.Logf("%s: %s", p.id, line)
				}
			}
		}
	})
	body := strings.Repeat("A line of a message that fills some disk.\r\n", 450) // ~20 KB
	for i := 0; i < 30; i++ {
		if code, msg := send(t, ps[i%4].smtp, "s@elsewhere.net", []string{"alice@example.com"}, fmt.Sprintf("Subject: %d\r\n\r\n%s", i, body)); code != 250 {
			t.Fatalf("send %d: %d %s", i, code, msg)
		}
	}
	verifyUntilOK(t, ps[0].admin, 10*time.Second)

	// Node loss: kill a follower for good and remove it, with mail flowing.
	st, _ := status(t, ps[0].admin)
	victim := ps[3]
	if victim.id == st.Leader {
		victim = ps[2]
	}
	var live []*proc
	for _, p := range ps {
		if p != victim {
			live = append(live, p)
		}
	}
	stop := make(chan struct{})
	var refused []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if code, msg := send(t, live[i%3].smtp, "s@elsewhere.net", []string{"bob@example.com"}, fmt.Sprintf("Subject: during %d\r\n\r\n%s", i, body)); code != 250 {
				refused = append(refused, fmt.Sprintf("%d %s", code, msg))
			}
		}
	}()
	victim.stop(syscall.SIGKILL)
	mustCLI(t, "cluster", "remove", victim.id, "--addr", live[0].admin)
	leader := waitRepairStarted(t, live[0].admin)
	close(stop)
	wg.Wait()
	if len(refused) > 0 {
		t.Fatalf("deliveries refused during node loss and repair: %v", refused)
	}

	// The leader crashes in the middle of the repair and comes back; the
	// new leader finishes the repair.
	for _, p := range live {
		if p.id == leader {
			p.stop(syscall.SIGKILL)
			p.start(t, p.extra...)
		}
	}
	verifyUntilOK(t, live[0].admin, 60*time.Second)

	// Join: an empty fifth node receives a share of the bodies.
	fifth = &proc{id: "n5", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	fifth.start(t, append(append(fifth.smtpArgs(t), flags...), "--join", live[0].admin)...)
	waitStatus(t, live[0].admin, 60*time.Second, func(s statusJSON) bool {
		for _, n := range s.Nodes {
			if n.ID == "n5" && n.Bodies > 0 {
				return true
			}
		}
		return false
	})
	live = append(live, fifth)

	// Corruption: damage one replica; a read through that node still
	// returns the message, and the copy is replaced.
	msgs := messages(t, live[0].admin, "alice@example.com")
	var rec struct {
		Replicas []string `json:"replicas"`
	}
	admin(t, live[0].admin, "/v1/bodies/"+msgs[0].Hash, &rec)
	holder := byID(live, rec.Replicas[0])
	if code := adminPost(t, holder.admin, "/v1/fault/damage/"+msgs[0].Hash); code != 200 {
		t.Fatalf("damage: HTTP %d", code)
	}
	out := python(t, imapFetch, holder.imap, "alice@example.com", "pw-alice")
	if strings.Count(out, "A line of a message") < 30*450 {
		t.Fatalf("reading alice's mail through %s after the damage returned too little", holder.id)
	}
	verifyUntilOK(t, live[0].admin, 30*time.Second)

	// Deletion: expunge everything; every node's store empties.
	for _, user := range []string{"alice", "bob"} {
		python(t, imapExpungeAll, live[1].imap, user+"@example.com", "pw-"+user)
	}
	waitStatus(t, live[0].admin, 30*time.Second, func(s statusJSON) bool {
		for _, n := range s.Nodes {
			if n.Bodies != 0 {
				return false
			}
		}
		return len(s.Nodes) == 4
	})
}

const imapExpungeAll = `
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
m.login(sys.argv[2], sys.argv[3])
m.select("INBOX")
typ, data = m.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
assert typ == "OK", data
typ, data = m.expunge()
assert typ == "OK", data
m.logout()
`

func byID(ps []*proc, id string) *proc {
	for _, p := range ps {
		if p.id == id {
			return p
		}
	}
	return nil
}

func adminPost(t *testing.T, addr, path string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+cliSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

// verifyUntilOK runs 'powermail storage verify' until it passes.
func verifyUntilOK(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		out, errOut, err := cli(t, "", "storage", "verify", "--addr", addr)
		if err == nil {
			if !strings.Contains(out, "0 short") || errOut != "" { // no bar into a pipe
				t.Fatalf("verify passed but printed %q / %q", out, errOut)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("storage verify still failing after %v: %v\n%s%s", d, err, out, errOut)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitRepairStarted waits until the leader reports a copy made and
// returns the leader's ID.
func waitRepairStarted(t *testing.T, addr string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var st struct {
			Leader     string `json:"leader"`
			Redundancy *struct {
				Repaired int64 `json:"repaired_total"`
			} `json:"redundancy"`
		}
		if admin(t, addr, "/v1/cluster/status", &st) == 200 && st.Redundancy != nil && st.Redundancy.Repaired > 0 {
			return st.Leader
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no repair started within 30 s")
	return ""
}
