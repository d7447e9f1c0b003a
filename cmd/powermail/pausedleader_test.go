package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/smtp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestPausedLeaderServesNoStaleRead stops the leader (SIGSTOP) while mail
// flows through it, lets the others elect a new leader and acknowledge a
// message, queues reads on the stopped leader and resumes it. Each read
// must fail or include the message: the old leader wakes believing it
// still leads, with its followers' replies to appends sent before the
// stop waiting in its sockets, and those must not confirm it (Jepsen run
// 74 found such a read; node/leaderterm.go).
func TestPausedLeaderServesNoStaleRead(t *testing.T) {
	if testing.Short() {
		t.Skip("stops the leader several times")
	}
	ps := startMailCluster(t)
	for attempt := 1; attempt <= 2; attempt++ {
		pausedLeaderRound(t, ps, attempt)
	}
}

func pausedLeaderRound(t *testing.T, ps []*proc, attempt int) {
	st := waitStatus(t, ps[0].admin, 30*time.Second, func(s statusJSON) bool { return s.Health == "healthy" && s.Leader != "" })
	old := byID(ps, st.Leader)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 8 { // appends in flight at the moment of the stop
		wg.Go(func() { keepSending(old.smtp, fmt.Sprintf("load%d", i), stop) })
	}
	time.Sleep(time.Second)
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			old.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	var other *proc
	for _, p := range ps {
		if p != old {
			other = p
			break
		}
	}
	waitStatus(t, other.admin, 30*time.Second, func(s statusJSON) bool { return s.Leader != "" && s.Leader != old.id })
	marker := fmt.Sprintf("<marker%d@test>", attempt)
	sendEventually(t, other.smtp, "Subject: marker\r\nMessage-ID: "+marker+"\r\n\r\nacknowledged while the old leader is stopped\r\n")
	want := len(messages(t, other.admin, "alice@example.com"))

	// Reads sent to the stopped leader wait in its sockets.
	const reads = 16
	got := make(chan string, reads)
	for range reads {
		go func() { got <- countOn(old.admin, "alice@example.com", want) }()
	}
	time.Sleep(500 * time.Millisecond)
	resume()
	for range reads {
		if res := <-got; res != "" {
			t.Errorf("attempt %d: a read on the resumed old leader %s %s", attempt, old.id, res)
		}
	}
	close(stop)
	wg.Wait()
}

// countOn lists mailbox on a node's admin API; "" if the read failed or
// saw at least want messages, else what it saw.
func countOn(admin, mailbox string, want int) string {
	req, _ := http.NewRequest("GET", "http://"+admin+"/v1/mailboxes/"+mailbox+"/messages", nil)
	req.Header.Set("Authorization", "Bearer "+cliSecret)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var out []indexEntry
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return ""
	}
	if len(out) < want {
		return fmt.Sprintf("listed %d messages, %d were acknowledged before it began", len(out), want)
	}
	return ""
}

// keepSending delivers to alice@ through addr until stop, ignoring
// failures (the node is stopped and resumed under it).
func keepSending(addr, tag string, stop chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		c, err := smtp.Dial(addr)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		msg := fmt.Sprintf("Subject: %s-%d\r\n\r\n%s\r\n", tag, i, strings.Repeat("x", 2000))
		done := make(chan struct{})
		go func() {
			select {
			case <-stop:
				c.Close()
			case <-done:
			}
		}()
		if c.Mail("load@elsewhere.net") == nil && c.Rcpt("alice@example.com") == nil {
			if w, err := c.Data(); err == nil {
				w.Write([]byte(msg))
				w.Close()
			}
		}
		c.Close()
		close(done)
	}
}
