package node

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
)

// BenchmarkQueueThroughput measures how fast the outbound queue drains
// to a fast local SMTP sink: b.N forwards are committed first (the worker
// paused), then the leader sends them, with connection reuse, and every
// outcome and removal goes through raft.
//
//	go test -run '^$' -bench QueueThroughput -benchtime 2000x ./node/
func BenchmarkQueueThroughput(b *testing.B) {
	s := newSink(b)
	c := queueCluster(b, s, func(q *QueueConfig) { q.Interval = time.Hour; q.Lease = time.Minute })
	l := c.leader(time.Second)
	for _, n := range c.nodes {
		n.queue.paused.Store(true)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range b.N {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sendVia(b, l, "a@example.com", fmt.Sprintf("Subject: %d\r\n\r\nforward %d\r\n", i, i), "out@example.com")
		}()
	}
	wg.Wait()
	b.ResetTimer()
	for _, n := range c.nodes {
		n.queue.paused.Store(false)
	}
	kickAll(c)
	deadline := time.Now().Add(10 * time.Minute)
	for len(s.messages()) < b.N || !queueEmpty(c) {
		if time.Now().After(deadline) {
			b.Fatalf("sent %d of %d", len(s.messages()), b.N)
		}
		kickAll(c)
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "forwards/s")
	if got := len(s.messages()); got != b.N {
		b.Fatalf("%d copies for %d forwards", got, b.N)
	}
}

// BenchmarkQueueBesideASlowDestination measures how fast forwards to a
// fast server drain while 300 entries for a slow one (half a second a
// message, as a busy provider or a tarpit may take) were queued before
// them: with the give-back (`--queue-busy-wait`, the default) and with
// workers that wait for a connection as long as their attempt lasts
// (BusyWait negative, the behaviour before it).
//
//	go test -run '^$' -bench QueueBesideASlowDestination -benchtime 500x ./node/
func BenchmarkQueueBesideASlowDestination(b *testing.B) {
	for _, bc := range []struct {
		name string
		wait time.Duration
	}{{"give-back", 0}, {"wait", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			fast, slow := newSink(b), newSink(b)
			slow.mu.Lock()
			slow.mode, slow.delay = "slow", 500*time.Millisecond
			slow.mu.Unlock()
			c := queueCluster(b, fast, func(q *QueueConfig) {
				q.Interval, q.Lease, q.BusyWait = time.Hour, time.Minute, bc.wait
				// The defaults' retry times: RetryMax also bounds how far
				// ahead a give-back is due, which the tests' 300 ms would
				// make the slow host's whole backlog come back at once.
				q.RetryMin, q.RetryMax = time.Minute, 2*time.Hour
				q.DestOverride["slow.test"] = slow.addr
			})
			l := c.leader(time.Second)
			mustApply(b, l, &fsm.ForwardAdd{Address: "toslow@example.com", Targets: []string{"p@slow.test"}})
			for _, n := range c.nodes {
				n.queue.paused.Store(true)
			}
			fill(b, 300, func(i int) {
				sendVia(b, l, "a@example.com", fmt.Sprintf("Subject: s%d\r\n\r\nslow\r\n", i), "toslow@example.com")
			})
			fill(b, b.N, func(i int) {
				sendVia(b, l, "a@example.com", fmt.Sprintf("Subject: f%d\r\n\r\nfast\r\n", i), "out@example.com")
			})
			b.ResetTimer()
			for _, n := range c.nodes {
				n.queue.paused.Store(false)
			}
			deadline := time.Now().Add(5 * time.Minute)
			for len(fast.messages()) < b.N {
				if time.Now().After(deadline) {
					b.Fatalf("sent %d of %d", len(fast.messages()), b.N)
				}
				kickAll(c)
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fast-forwards/s")
		})
	}
}

// fill runs add for 0..n-1, 32 at a time.
func fill(b *testing.B, n int, add func(int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			add(i)
		})
	}
	wg.Wait()
}

// kickAll wakes every node's queue loop: the benchmarks set the loop's
// interval to an hour, so that only kicks drive it, and a leader change
// under load would otherwise leave the new leader asleep (a benchmark of
// 500 forwards once stalled for its whole five minutes so).
func kickAll(c *testCluster) {
	for _, n := range c.nodes {
		n.queue.kick()
	}
}
