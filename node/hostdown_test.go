package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
)

// tarpit accepts connections and never says a word, like a server that
// hangs; it counts the connections.
func tarpit(t testing.TB) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String(), &conns
}

// Many entries for a server that accepts and never greets cost one
// attempt's deadline, not one each: the host is skipped for a while
// after it failed, so two queue workers are free again at once and mail
// for a live destination is not held up behind it. A skipped entry
// counts no attempt; it is due again when the mark lapses.
func TestQueueSkipsADeadHostForAWhile(t *testing.T) {
	s := newSink(t)
	pit, conns := tarpit(t)
	c := queueCluster(t, s, func(q *QueueConfig) {
		q.DestOverride["tarpit.net"] = pit
		q.Concurrency, q.GreetingTimeout, q.HostDownTime = 2, 300*time.Millisecond, time.Minute
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "slow@example.com", Targets: []string{"x@tarpit.net"}})
	const stuck = 6
	for range stuck {
		sendVia(t, c.follower(), "a@example.com", fwdBody, "slow@example.com")
	}
	sendVia(t, c.follower(), "a@example.com", fwdBody, "out@example.com")
	counted := 0
	waitFor(t, 10*time.Second, "every tarpit entry tried or skipped, and the live one sent", func() bool {
		entries, err := l.State().QueueList("", 100)
		if err != nil || len(entries) != stuck {
			return false
		}
		counted = 0
		for _, e := range entries {
			skipped := e.LeaseHolder == "" && e.NextAttempt > e.Created+(30*time.Second).Milliseconds()
			if e.Attempts < 1 && !skipped {
				return false
			}
			if e.Attempts > 0 {
				counted++
			}
		}
		return len(s.messages()) == 1
	})
	if n := conns.Load(); n > 2 {
		t.Fatalf("the hanging server got %d connections for %d entries; want at most one per worker", n, stuck)
	}
	if counted > 2 {
		t.Fatalf("%d entries counted an attempt; want only those that dialled, one per worker", counted)
	}
}

// A failed dial marks the host down for the set time only, a later
// success clears the mark, and a failure that is not the host's (not a
// routing error) does not mark it.
func TestHostHealthMarks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	refused := fmt.Errorf("%w: connection refused", ErrNoRoute)
	var h hostHealth
	if h.observe("mx:25", errors.New("AUTH failed"), t0, time.Minute); h.down(t0) != nil {
		t.Fatal("marked down by a failure that is not a routing one")
	}
	if !h.observe("mx:25", refused, t0, time.Minute) || !errors.Is(h.down(t0.Add(59*time.Second)), ErrHostDown) {
		t.Fatal("not marked down after a failed dial")
	}
	if h.down(t0.Add(time.Minute)) != nil {
		t.Fatal("still down after the set time")
	}
	h.observe("mx:25", refused, t0, time.Minute)
	h.observe("mx:25", nil, t0.Add(time.Second), time.Minute)
	if h.down(t0.Add(2*time.Second)) != nil {
		t.Fatal("a successful dial did not clear the mark")
	}
}

// An entry skipped for a mark comes back when the mark lapses while the
// host has only just failed, and after as long again as it has been
// failing once that is longer (at most the ceiling), so that a long
// outage's skipped entries slow down as their backoff would have; a
// successful dial starts the count again.
func TestHostDownSkipsComeBackAtTheOutagesPace(t *testing.T) {
	t0 := time.Unix(1000, 0)
	refused := fmt.Errorf("%w: connection refused", ErrNoRoute)
	var h hostHealth
	again := func(now time.Time) time.Time {
		t.Helper()
		var de *hostDownError
		if !errors.As(h.down(now), &de) {
			t.Fatalf("not marked down at %v", now)
		}
		return de.again(now, 2*time.Hour)
	}
	h.observe("mx:25", refused, t0, time.Minute)
	if got, want := again(t0.Add(time.Second)), t0.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("just failed: back at %v, want the mark's end %v", got, want)
	}
	t1 := t0.Add(30 * time.Minute) // failing still, the mark renewed
	h.observe("mx:25", refused, t1, time.Minute)
	if got, want := again(t1), t1.Add(30*time.Minute); !got.Equal(want) {
		t.Fatalf("failing for 30m: back at %v, want %v", got, want)
	}
	t2 := t0.Add(5 * time.Hour)
	h.observe("mx:25", refused, t2, time.Minute)
	if got, want := again(t2), t2.Add(2*time.Hour); !got.Equal(want) {
		t.Fatalf("failing for 5h: back at %v, want the ceiling's %v", got, want)
	}
	h.observe("mx:25", nil, t2.Add(time.Second), time.Minute)
	t3 := t2.Add(time.Hour)
	h.observe("mx:25", refused, t3, time.Minute)
	if got, want := again(t3), t3.Add(time.Minute); !got.Equal(want) {
		t.Fatalf("failing again after a success: back at %v, want the mark's end %v", got, want)
	}
}

// A dial that the attempt's own deadline cuts short says nothing about
// the host; one that outlasts its greeting time on a live attempt does.
func TestDialBlamesTheHostOnlyWithinItsOwnBudget(t *testing.T) {
	pit, _ := tarpit(t)
	n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.cfg.Queue = QueueConfig{GreetingTimeout: 300 * time.Millisecond, DialTimeout: time.Second}
	n.cfg.Queue.setDefaults()
	p := newSMTPPool(n)
	spent, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.get(spent, pit, false, false); err == nil {
		t.Fatal("a session with a server that never greets")
	}
	if err := p.host(pit).health.down(time.Now()); err != nil {
		t.Fatalf("marked down by an attempt that ran out of time: %v", err)
	}
	if _, err := p.get(context.Background(), pit, false, false); err == nil {
		t.Fatal("a session with a server that never greets")
	}
	if err := p.host(pit).health.down(time.Now()); !errors.Is(err, ErrHostDown) {
		t.Fatalf("not marked down after its greeting time: %v", err)
	}
}

// An attempt that has already ended takes nothing from the pool: it
// neither dials nor cuts the idle connections other attempts will use.
func TestEndedAttemptLeavesIdleConnections(t *testing.T) {
	s := newSink(t)
	n := &Node{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.cfg.Queue = QueueConfig{DialTimeout: time.Second}
	n.cfg.Queue.setDefaults()
	p := newSMTPPool(n)
	var open []*pooledClient
	for range 3 {
		pc, err := p.get(context.Background(), s.addr, false, false)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, pc)
	}
	for _, pc := range open {
		p.put(pc, true)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.get(ended, s.addr, false, false); err == nil {
		t.Fatal("an ended attempt got a connection")
	}
	if idle := len(p.host(s.addr).idle); idle != 3 {
		t.Fatalf("%d idle connections left, want 3", idle)
	}
}

// An idle connection past IdleTimeout is closed by the sweep, and its
// slot freed, without another message for its host.
func TestIdleConnectionsSwept(t *testing.T) {
	s := newSink(t)
	p := newSMTPPool(queueNode(func(q *QueueConfig) { q.IdleTimeout = time.Minute }))
	pc, err := p.get(context.Background(), s.addr, false, false)
	if err != nil {
		t.Fatal(err)
	}
	p.put(pc, true)
	h := p.host(s.addr)
	p.sweepIdle(pc.used.Add(59 * time.Second))
	if len(h.idle) != 1 {
		t.Fatal("a connection within IdleTimeout was swept")
	}
	p.sweepIdle(pc.used.Add(61 * time.Second)) // within half the TTL of the last sweep: skipped
	if len(h.idle) != 1 {
		t.Fatal("the sweep ran twice within half the TTL")
	}
	p.sweepIdle(pc.used.Add(90 * time.Second))
	if len(h.idle) != 0 || len(h.slots) != 0 {
		t.Fatalf("after the sweep: %d idle, %d slots held; want none", len(h.idle), len(h.slots))
	}
	if _, kept := p.hosts[s.addr]; !kept {
		t.Fatal("a host used within two idle times was forgotten")
	}
	p.sweepIdle(time.Now().Add(3 * time.Minute))
	if _, kept := p.hosts[s.addr]; kept {
		t.Fatal("a host unused for two idle times is still remembered")
	}
}

// A connection a worker returns after the pool closed (the queue loop
// ends before its workers) is closed, not kept.
func TestConnectionReturnedAfterCloseIsClosed(t *testing.T) {
	s := newSink(t)
	p := newSMTPPool(queueNode(func(q *QueueConfig) { q.IdleTimeout = time.Minute }))
	pc, err := p.get(context.Background(), s.addr, false, false)
	if err != nil {
		t.Fatal(err)
	}
	p.closeIdle()
	p.put(pc, true)
	h := p.host(s.addr)
	if len(h.idle) != 0 || len(h.slots) != 0 {
		t.Fatalf("after the pool closed: %d idle, %d slots held; want none", len(h.idle), len(h.slots))
	}
	if err := pc.c.Noop(); err == nil {
		t.Fatal("the connection is still open")
	}
}

// An entry's domains are sent to at once: a server that never greets
// spends the attempt's deadline for its own recipients only, and the
// others' mail goes on the first attempt.
func TestQueueSlowDomainHoldsUpOnlyItself(t *testing.T) {
	s := newSink(t)
	pit, _ := tarpit(t)
	c := queueCluster(t, s, func(q *QueueConfig) {
		q.DestOverride["tarpit.net"] = pit
		q.AttemptTimeout, q.GreetingTimeout = time.Second, 10*time.Second
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "two@example.com", Targets: []string{"x@tarpit.net", "y@elsewhere.net"}})
	sendVia(t, c.follower(), "a@example.com", fwdBody, "two@example.com")
	waitFor(t, 5*time.Second, "the live domain's copy", func() bool { return len(s.messages()) == 1 })
	waitFor(t, 5*time.Second, "the first attempt recorded", func() bool {
		list, err := l.State().QueueList("", 10)
		return err == nil && len(list) == 1 && list[0].Attempts == 1 &&
			slices.Equal(list[0].Pending(), []string{"x@tarpit.net"})
	})
}

// A round leases no more entries than there are free workers: an entry
// leased only to wait would spend its lease waiting.
func TestQueueLeasesOnlyWhatItCanWork(t *testing.T) {
	s := newSink(t)
	pit, _ := tarpit(t)
	c := queueCluster(t, s, func(q *QueueConfig) {
		q.DestOverride["tarpit.net"] = pit
		q.Concurrency, q.GreetingTimeout, q.HostDownTime = 1, 10*time.Second, -1
	})
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "slow@example.com", Targets: []string{"x@tarpit.net"}})
	for range 4 {
		sendVia(t, c.follower(), "a@example.com", fwdBody, "slow@example.com")
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		list, err := l.State().QueueList("", 10)
		if err != nil {
			t.Fatal(err)
		}
		leased := 0
		for _, e := range list {
			if e.LeaseExpires > time.Now().UnixMilli() {
				leased++
			}
		}
		if leased > 1 {
			t.Fatalf("%d entries leased with one worker", leased)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
