package node

import (
	"testing"
	"time"

	"powermail/fsm"
)

// A destination whose connections are all in use does not hold the
// queue's workers: an entry that waited BusyWait for one is given back
// (no attempt counted, due again soon), and mail for other destinations
// goes meanwhile. Here the one connection to slow.test hangs in DATA and
// there are two workers; before, the second slow entry waited for that
// connection with the other worker, and nothing else was sent until the
// attempt's deadline.
func TestQueueBusyDestinationDoesNotHoldTheWorkers(t *testing.T) {
	fast := newSink(t)
	slow := newSink(t)
	slow.set("wait")
	c := queueCluster(t, fast, func(q *QueueConfig) {
		q.DestOverride["slow.test"] = slow.addr
		q.MaxConnsPerDest, q.Concurrency, q.BusyWait = 1, 2, 200*time.Millisecond
		q.Lease, q.RetryMin, q.RetryMax = time.Minute, time.Hour, 2*time.Hour
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "toslow@example.com", Targets: []string{"p@slow.test"}})
	for range 3 {
		sendVia(t, l, "a@example.com", fwdBody, "toslow@example.com")
	}
	waitFor(t, 10*time.Second, "the slow server holding a message", func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return slow.tries > 0
	})
	for range 2 {
		sendVia(t, l, "a@example.com", fwdBody, "out@example.com")
	}
	waitFor(t, 10*time.Second, "mail for the other destination sent", func() bool { return len(fast.messages()) == 2 })
	for _, e := range queueEntries(t, l) {
		// A sent entry may not be removed yet: only the waiting count.
		if e.Attempts > 0 && !e.Done() {
			t.Errorf("entry %s waiting for the busy destination counts %d attempts", e.ID, e.Attempts)
		}
	}
	close(slow.release)
	waitFor(t, 20*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	if got := len(slow.messages()); got != 3 {
		t.Errorf("the slow server took %d messages, want 3", got)
	}
}

// queueEntries lists the queue as n sees it.
func queueEntries(t testing.TB, n *Node) []fsm.QueueEntry {
	t.Helper()
	l, err := n.State().QueueList("", 100)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// An entry with one destination busy and another answering 4xx keeps
// the retry backoff for the one that answered: coming back after
// BusyWait for the busy one's sake, it sent to the deferring server
// again every BusyWait, and its attempt count ran up with each.
func TestQueueBusyDestinationDoesNotHurryATemporaryFailure(t *testing.T) {
	deferring := newSink(t)
	deferring.set("451")
	slow := newSink(t)
	slow.set("wait")
	c := queueCluster(t, deferring, func(q *QueueConfig) {
		q.DestOverride["slow.test"] = slow.addr
		q.MaxConnsPerDest, q.BusyWait = 1, 100*time.Millisecond
		q.Lease, q.RetryMin, q.RetryMax = time.Minute, time.Hour, 2*time.Hour
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "toslow@example.com", Targets: []string{"p@slow.test"}})
	mustApply(t, l, &fsm.ForwardAdd{Address: "mixed@example.com", Targets: []string{"q@slow.test", "x@elsewhere.net"}})
	sendVia(t, l, "a@example.com", fwdBody, "toslow@example.com")
	waitFor(t, 10*time.Second, "the slow server holding a message", func() bool {
		slow.mu.Lock()
		defer slow.mu.Unlock()
		return slow.tries > 0
	})
	sendVia(t, l, "a@example.com", fwdBody, "mixed@example.com")
	tries := func() int {
		deferring.mu.Lock()
		defer deferring.mu.Unlock()
		return deferring.tries
	}
	waitFor(t, 10*time.Second, "the deferring server tried", func() bool { return tries() > 0 })
	time.Sleep(time.Second)
	if got := tries(); got > 1 {
		t.Errorf("the server that deferred was tried %d times in a second; its retry is an hour away", got)
	}
	close(slow.release)
}

// A host's give-backs are scheduled at its pace: after the attempts
// waiting for it, one transaction's time apart.
func TestHostLineSchedulesGiveBacksAtItsPace(t *testing.T) {
	var l hostLine
	for range 20 { // two connections, 100 ms a transaction: 20 a second
		l.ended(100 * time.Millisecond)
	}
	now := time.Unix(1000, 0)
	for range 3 {
		l.enter()
	}
	step := 50 * time.Millisecond
	for i, want := range []time.Duration{4 * step, 5 * step, 6 * step} {
		if got := l.giveBack(now, 2, time.Hour).Sub(now); got < want-step/10 || got > want+step/10 {
			t.Errorf("give-back %d due after %v, want about %v", i, got, want)
		}
	}
	// A host with no transaction ended yet goes at a second a connection.
	var fresh hostLine
	if got := fresh.giveBack(now, 10, time.Hour).Sub(now); got != 100*time.Millisecond {
		t.Errorf("a fresh host's give-back due after %v, want 100ms", got)
	}
}

// A slow host's give-backs are spaced at its own pace, not at the pace
// of a host doing a transaction a second per connection: the floor
// meant for a host with nothing measured yet stood in for every host
// slower than it, so a tarpit's backlog came back many times faster
// than it could be taken, each entry holding a worker for BusyWait.
func TestHostLineKeepsASlowHostsPace(t *testing.T) {
	var l hostLine
	// Two connections, each transaction five seconds: one ends every 2.5 s.
	for range 12 {
		l.ended(5 * time.Second)
	}
	now := time.Unix(1000, 0)
	l.enter() // the caller giving back
	if got := l.giveBack(now, 2, time.Hour).Sub(now); got < 2500*time.Millisecond {
		t.Errorf("give-back due after %v, want at least one transaction's time at the host's pace, 2.5s", got)
	}
	// However long the host's line, a give-back is due within the limit.
	for range 5000 {
		l.giveBack(now, 2, time.Hour)
	}
	if got := l.giveBack(now, 2, time.Hour).Sub(now); got > time.Hour {
		t.Errorf("give-back behind a long line due after %v, want at most the limit, 1h", got)
	}
	// A clock step makes no transaction free.
	l.ended(-time.Minute)
	if s := l.step(2); s <= 0 || s > 2500*time.Millisecond {
		t.Errorf("step after a clock step back %v, want within (0, 2.5s]", s)
	}
}

// An entry given back for a busy destination is never due past the end
// of its lifetime: when the host's line put it later, the sender heard
// of the expiry only then.
func TestQueueBusyGiveBackStaysWithinTheLifetime(t *testing.T) {
	slow := newSink(t)
	slow.set("wait")
	life := 5 * time.Second
	c := queueCluster(t, newSink(t), func(q *QueueConfig) {
		q.DestOverride["slow.test"] = slow.addr
		q.MaxConnsPerDest, q.Concurrency, q.BusyWait = 1, 20, 100*time.Millisecond
		q.Lease, q.RetryMin, q.RetryMax, q.Lifetime = time.Minute, time.Hour, 2*time.Hour, life
	})
	defer close(slow.release)
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "toslow@example.com", Targets: []string{"p@slow.test"}})
	for range 10 {
		sendVia(t, l, "a@example.com", fwdBody, "toslow@example.com")
	}
	givenBack := func() (n int) {
		for _, e := range queueEntries(t, l) {
			if e.LeaseHolder == "" && e.Attempts == 0 && e.NextAttempt > e.Created {
				n++
			}
		}
		return n
	}
	waitFor(t, 10*time.Second, "entries given back", func() bool { return givenBack() >= 9 })
	for _, e := range queueEntries(t, l) {
		if end := e.Created + life.Milliseconds(); e.NextAttempt > end {
			t.Errorf("entry %s given back until %v after its lifetime's end", e.ID, time.Duration(e.NextAttempt-end)*time.Millisecond)
		}
	}
}

// An entry that comes due again while its worker is still on it (it
// recorded the attempt and is finishing: a notice, a removal) and that
// a round leases meanwhile is worked: the round skipped it, as one in
// flight, and its lease kept it from every round until it lapsed (half
// an hour by default). Given-back entries come due within moments, so
// this is no longer rare.
func TestQueueEntryLeasedAgainWhileInFlightIsWorked(t *testing.T) {
	s := newSink(t)
	s.set("451")
	c := queueCluster(t, s, func(q *QueueConfig) { q.Lease = time.Minute })
	l := c.leader(time.Second)
	l.queue.paused.Store(true) // the rounds are the test's
	ended := make(chan string, 1)
	goOn := make(chan struct{})
	hook := func(id string) {
		ended <- id
		<-goOn
	}
	l.queue.afterWork.Store(&hook)
	sendVia(t, l, "a@example.com", fwdBody, "out@example.com")
	ctx := ctxT(t, 30*time.Second)
	l.queueRound(ctx) // deferred, due again within RetryMax
	var id string
	select {
	case id = <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt")
	}
	l.queue.afterWork.Store(nil)
	time.Sleep(400 * time.Millisecond) // past RetryMax: due again
	s.set("ok")
	l.queueRound(ctx) // leases it while its worker is still on it
	if e, err := l.State().QueueGet(id); err != nil || e.LeaseHolder == "" {
		t.Fatalf("entry not leased again: %+v, %v", e, err)
	}
	close(goOn)
	l.queue.paused.Store(false)
	waitFor(t, 10*time.Second, "the entry sent", func() bool { return len(s.messages()) == 1 })
}
