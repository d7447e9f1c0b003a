package node

import (
	"bytes"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
)

// benchCluster starts a three-node cluster with production raft timings.
func benchCluster(b *testing.B) *testCluster { return benchClusterWith(b, nil) }

func benchClusterWith(b *testing.B, tweak func(*Config)) *testCluster {
	c := &testCluster{t: b, dir: b.TempDir(), nodes: map[string]*Node{}, tweak: tweak}
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
	benchBarrier(b, c.follower())
}

// BenchmarkBarrierLeader is BenchmarkBarrierFollower on the leader,
// whose rounds confirm its term with the followers (leaderterm.go).
func BenchmarkBarrierLeader(b *testing.B) {
	c := benchCluster(b)
	benchBarrier(b, c.leader(10*time.Second))
}

func benchBarrier(b *testing.B, n *Node) {
	ctx := ctxT(b, time.Hour)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := n.Barrier(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}

// BenchmarkDeliver4K measures replicated delivery of 4 KiB messages (R=2,
// W=2) through all three nodes with 32 concurrent deliveries: body to the
// local store and one peer, both fsynced, then one raft commit each.
func BenchmarkDeliver4K(b *testing.B) { benchDeliver4K(b, benchCluster(b)) }

// BenchmarkDeliver4KClusterTLS is BenchmarkDeliver4K with every cluster
// connection over TLS (clustertls.go).
func BenchmarkDeliver4KClusterTLS(b *testing.B) {
	ca := newTestCA(b, "cluster CA")
	benchDeliver4K(b, benchClusterWith(b, func(cfg *Config) { cfg.ClusterTLS = ca.config(b, cfg.ID) }))
}

func benchDeliver4K(b *testing.B, c *testCluster) {
	l := c.nodes["n1"]
	if _, err := l.Apply(ctxT(b, 10*time.Second), &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "rcpt@example.com"}}}); err != nil {
		b.Fatal(err)
	}
	for _, n := range c.nodes {
		waitFor(b, 10*time.Second, "members", func() bool { m, _ := n.State().Members(); return len(m) == 3 })
	}
	nodes := []*Node{c.nodes["n1"], c.nodes["n2"], c.nodes["n3"]}
	ctx := ctxT(b, time.Hour)
	var seq atomic.Int64
	b.SetBytes(4096)
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		body := make([]byte, 4096)
		for pb.Next() {
			i := seq.Add(1)
			copy(body, fmt.Sprintf("Message-ID: <%d@bench>\r\n", i))
			msg := Message{Mailboxes: []string{"rcpt@example.com"}, Received: time.Now()}
			if _, err := nodes[i%3].Deliver(ctx, msg, bytes.NewReader(body)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAccountActive measures the check an IMAP, POP3 or submission
// session makes of its mailbox after login (a local read of the
// directory, no barrier), on a follower whose cache holds the record.
func BenchmarkAccountActive(b *testing.B) {
	c := benchCluster(b)
	l := c.leader(10 * time.Second)
	const addr = "active@example.com"
	if _, err := l.Apply(ctxT(b, 30*time.Second), addMailbox(addr)); err != nil {
		b.Fatal(err)
	}
	f := c.follower()
	c.readEverywhere(addr)
	ctx := ctxT(b, time.Hour)
	login := Login{Address: addr, Credential: CredentialOf("")} // no password: as added
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := f.AccountActive(ctx, login); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCredentialOf measures the fingerprint AccountActive adds to
// its read: one SHA-256 of a stored argon2id hash string.
func BenchmarkCredentialOf(b *testing.B) {
	h, err := fsm.HashPassword("pw")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = CredentialOf(h)
	}
}
