package node

import (
	"fmt"
	"sync"
	"testing"
	"time"
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
	l.queue.kick()
	deadline := time.Now().Add(10 * time.Minute)
	for len(s.messages()) < b.N || !queueEmpty(c) {
		if time.Now().After(deadline) {
			b.Fatalf("sent %d of %d", len(s.messages()), b.N)
		}
		l.queue.kick()
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "forwards/s")
	if got := len(s.messages()); got != b.N {
		b.Fatalf("%d copies for %d forwards", got, b.N)
	}
}
