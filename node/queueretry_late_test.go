package node

import (
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/fsm"
)

// An operator's retry of an entry whose host is marked down still dials
// it when every worker stayed busy for longer than a lease before the
// entry's turn came, and another retry was applied in between. The
// retry's note is the only thing that tells the worker to dial a marked
// host; dropping it after a lease turned the retry into a scheduled
// attempt, skipped for the mark, and the entry waited an hour here.
// One worker, kept busy by a backlog for a slow server well past the
// two-second lease.
func TestQueueOperatorRetryOutlastsABusyBacklog(t *testing.T) {
	slow := newSink(t)
	addr := closedPort(t)
	c := queueCluster(t, slow, func(q *QueueConfig) {
		q.DestOverride["down.net"] = addr
		q.RetryMin, q.RetryMax, q.HostDownTime = time.Hour, time.Hour, time.Hour
		q.Concurrency = 1
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "down@example.com", Targets: []string{"x@down.net"}})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "down@example.com")
	sendVia(t, c.follower(), "a@example.com", fwdBody, "down@example.com")
	var down []fsm.QueueEntry
	waitFor(t, 10*time.Second, "both entries for the down host worked", func() bool {
		var ok bool
		down, ok = worked(l, 2)
		return ok
	})
	fixed := startSinkOn(t, addr, func(*smtp.Server) {}, nil) // the operator fixed it

	slow.mu.Lock()
	slow.mode, slow.delay = "slow", 700*time.Millisecond
	slow.mu.Unlock()
	for range 6 {
		sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	}
	retry := func(id string) {
		t.Helper()
		if code, body := adminDo(t, c.follower(), "POST", "/v1/queue/"+id+"/retry", string(testSecret), ""); code != 200 {
			t.Fatalf("queue retry %s: %d %s", id, code, body)
		}
	}
	retry(down[0].ID)
	time.Sleep(l.cfg.Queue.Lease + 200*time.Millisecond)
	if len(fixed.messages()) != 0 {
		t.Fatal("the retried entry went before the backlog: the test proves nothing")
	}
	retry(down[1].ID)
	waitFor(t, 15*time.Second, "both retried entries at the fixed server", func() bool {
		return len(fixed.messages()) == 2
	})
}
