package node

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
)

// benchCluster starts a three-node cluster with production raft timings.
func benchCluster(b *testing.B) *testCluster {
	c := &testCluster{t: b, dir: b.TempDir(), nodes: map[string]*Node{}}
	l := c.start("n1", true, "")
	c.start("n2", false, l.AdminAddr())
	c.start("n3", false, l.AdminAddr())
	b.Cleanup(c.closeAll)
	c.leader(10 * time.Second)
	if _, err := l.Apply(ctxT(b, 30*time.Second), &fsm.DomainAdd{Name: "example.com"}); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkMailboxAdd3Nodes measures single-mailbox directory writes
// proposed concurrently through all three nodes (followers forward to the
// leader), each acknowledged only once committed by a raft majority.
func BenchmarkMailboxAdd3Nodes(b *testing.B) {
	c := benchCluster(b)
	nodes := []*Node{c.nodes["n1"], c.nodes["n2"], c.nodes["n3"]}
	ctx := ctxT(b, time.Hour)
	var seq atomic.Int64
	b.SetParallelism(16) // 32 writers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			n := nodes[i%3]
			if _, err := n.Apply(ctx, addMailbox(fmt.Sprintf("bench%d@example.com", i))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkBarrierFollower measures the read-index barrier from a
// follower under concurrency, where rounds are shared.
func BenchmarkBarrierFollower(b *testing.B) {
	c := benchCluster(b)
	f := c.follower()
	ctx := ctxT(b, time.Hour)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.Barrier(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
