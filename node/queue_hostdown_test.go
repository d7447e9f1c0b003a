package node

import (
	"net"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/fsm"
)

// closedPort returns a loopback address nothing listens on, so a dial
// to it is refused, until the test opens a server there.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// downCluster is a queue cluster whose down.net server is at addr, with
// a backoff and a down mark of an hour each, so that nothing but an
// operator's retry makes an entry due again within a test, and a host
// once marked stays marked.
func downCluster(t *testing.T, addr string, tweak func(*QueueConfig)) (*testCluster, *Node) {
	c := queueCluster(t, newSink(t), func(q *QueueConfig) {
		q.DestOverride["down.net"] = addr
		q.RetryMin, q.RetryMax, q.HostDownTime = time.Hour, time.Hour, time.Hour
		if tweak != nil {
			tweak(q)
		}
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "down@example.com", Targets: []string{"x@down.net"}})
	return c, l
}

// worked lists the queue's entries once none is leased and each has
// been worked at least once (counted, or given back for later): due
// again well after it was queued (a backoff or a mark is a minute at
// least in these tests).
func worked(l *Node, want int) ([]fsm.QueueEntry, bool) {
	list, err := l.State().QueueList("", 100)
	if err != nil || len(list) != want {
		return nil, false
	}
	for _, e := range list {
		if e.LeaseHolder != "" || e.NextAttempt < e.Created+(30*time.Second).Milliseconds() {
			return nil, false
		}
	}
	return list, true
}

// An operator who fixed a destination retries its entry and the mail
// goes at once: the retry dials the host though a failed dial marked it
// down a moment ago (for an hour here), and its success clears the mark.
// The retry goes through a follower's admin API, as an operator's would
// reach any node, while the leader works the queue.
func TestQueueOperatorRetryDialsAHostMarkedDown(t *testing.T) {
	addr := closedPort(t)
	c, l := downCluster(t, addr, nil)
	sendVia(t, c.follower(), "a@example.com", fwdBody, "down@example.com")
	var list []fsm.QueueEntry
	waitFor(t, 10*time.Second, "the refused first attempt", func() bool {
		var ok bool
		list, ok = worked(l, 1)
		return ok && list[0].Attempts == 1
	})
	host := l.queue.pool.host(addr)
	if host.health.down(time.Now()) == nil {
		t.Fatal("a refused dial did not mark the host down")
	}
	s := startSinkOn(t, addr, func(*smtp.Server) {}, nil) // the operator fixed it
	if code, body := adminDo(t, c.follower(), "POST", "/v1/queue/"+list[0].ID+"/retry", string(testSecret), ""); code != 200 {
		t.Fatalf("queue retry: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "the retried message at the fixed server, and the queue empty", func() bool {
		return len(s.messages()) == 1 && queueEmpty(c)
	})
	if err := host.health.down(time.Now()); err != nil {
		t.Fatalf("the retry's successful dial left the host marked down: %v", err)
	}
}

// An attempt that dialled nothing, because a failed dial marked its
// host down, is no attempt: it counts none and its entry's backoff does
// not grow. With one worker, the first entry's dial is refused (one
// attempt); the second entry, worked after it, is skipped.
func TestQueueHostDownSkipCountsNoAttempt(t *testing.T) {
	c, l := downCluster(t, closedPort(t), func(q *QueueConfig) {
		q.Concurrency = 1
		q.RetryMin, q.RetryMax = time.Minute, time.Hour
	})
	start := time.Now()
	sendVia(t, c.follower(), "a@example.com", fwdBody, "down@example.com")
	sendVia(t, c.follower(), "a@example.com", fwdBody, "down@example.com")
	var list []fsm.QueueEntry
	waitFor(t, 10*time.Second, "both entries worked", func() bool {
		var ok bool
		list, ok = worked(l, 2)
		return ok
	})
	var counted, skipped int
	for _, e := range list {
		switch e.Attempts {
		case 0:
			skipped++
			// Due when the mark lapses (an hour), not after a grown
			// backoff; and no outcome recorded for what was not tried.
			if due := time.UnixMilli(e.NextAttempt).Sub(start); due > time.Hour+10*time.Second {
				t.Fatalf("the skipped entry is due in %v, past the host's mark", due)
			}
			if e.Recipients[0].Error != "" || e.LastError != "" {
				t.Fatalf("the skipped entry has an error recorded: %+v", e)
			}
		case 1:
			counted++
		}
	}
	if counted != 1 || skipped != 1 {
		t.Fatalf("attempts %d and %d; want one attempt (the refused dial) and one skip", list[0].Attempts, list[1].Attempts)
	}
}

// A retry's note is honoured once, and only while the entry's schedule
// is still the one the retry set; a note older than the keep, such as a
// replayed log's, is not kept.
func TestOperatorRetryNotes(t *testing.T) {
	now := time.Now()
	r := newOperatorRetries(time.Minute)
	e := fsm.QueueEntry{ID: "q1", NextAttempt: now.UnixMilli()}
	r.applied(e, now)
	if !r.take(e) {
		t.Fatal("the retried entry's lease did not take the note")
	}
	if r.take(e) {
		t.Fatal("a note was taken twice")
	}
	r.applied(e, now)
	later := e
	later.NextAttempt += 5000 // an attempt in flight recorded its own schedule
	if r.take(later) || r.take(e) {
		t.Fatal("a note honoured after the retry was undone")
	}
	r.applied(fsm.QueueEntry{ID: "q2", NextAttempt: now.Add(-2 * time.Minute).UnixMilli()}, now)
	if len(r.at) != 0 {
		t.Fatalf("an old retry was noted: %v", r.at)
	}
}
