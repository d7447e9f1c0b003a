package node

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

// Repair benchmarks run once per invocation (-benchtime 1x): each builds
// a four-node cluster, fills it, loses a node and measures the repair.

// repairBenchSize is the body size, 256 KiB unless PM_REPAIR_SIZE (bytes)
// says otherwise; repairBenchBodies the number of bodies, 200 unless
// PM_REPAIR_BODIES says otherwise (2000 gives a repair of about 250 MB,
// long enough to see the steady rate). PM_REPAIR_BUSY sets
// Config.RepairBusyCopies.
func repairBenchSize() int { return envInt("PM_REPAIR_SIZE", 256<<10) }

func repairBenchBodies() int { return envInt("PM_REPAIR_BODIES", 200) }

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func repairBenchCluster(b *testing.B) (*testCluster, *Node, *Node) {
	c := newTestClusterWith(b, 4, func(cfg *Config) {
		cfg.PeerPollInterval = 100 * time.Millisecond
		cfg.RepairInterval = time.Hour
		cfg.RepairRate = 1 << 40
		cfg.RepairBusyCopies = envInt("PM_REPAIR_BUSY", 0)
	})
	l := c.leader(5 * time.Second)
	mustApply(b, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(b, l, addMailbox("a@example.com"))
	waitFor(b, 10*time.Second, "members", func() bool { m, _ := l.State().Members(); return len(m) == 4 })
	ctx := ctxT(b, 5*time.Minute)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range repairBenchBodies() {
		body := fmt.Sprintf("Subject: %d\r\n\r\n%s", i, attachment(rng, repairBenchSize()))
		if _, err := c.nodes[fmt.Sprintf("n%d", 1+i%4)].Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
	var victim *Node
	for _, id := range []string{"n4", "n3"} {
		if c.nodes[id] != l {
			victim = c.nodes[id]
			break
		}
	}
	return c, l, victim
}

// attachment returns size bytes shaped like a MIME attachment: base64 of
// random data in 76-column lines, which compresses as little as real
// attachments do (a run of one letter compresses to nothing and makes
// the store's decompression, not the copy, the cost being measured).
func attachment(rng *rand.Rand, size int) string {
	raw := make([]byte, size*3/4)
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	var sb strings.Builder
	for len(enc) > 76 {
		sb.WriteString(enc[:76])
		sb.WriteString("\r\n")
		enc = enc[76:]
	}
	sb.WriteString(enc)
	return sb.String()
}

func loseNode(b *testing.B, c *testCluster, l, victim *Node) int64 {
	st, _ := victim.bodies.Stats(ctxT(b, time.Second))
	victim.Kill()
	delete(c.nodes, victim.ID())
	if err := l.Remove(ctxT(b, 10*time.Second), victim.ID(), false); err != nil {
		b.Fatal(err)
	}
	return st.BodyBytes
}

// BenchmarkRepairThroughput: bytes re-replicated per second after a node
// holding about half of the bodies is removed.
func BenchmarkRepairThroughput(b *testing.B) {
	for range b.N {
		b.StopTimer()
		c, l, victim := repairBenchCluster(b)
		lost := loseNode(b, c, l, victim)
		b.StartTimer()
		start := time.Now()
		st, err := l.RepairRound(ctxT(b, 5*time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		secs := time.Since(start).Seconds()
		b.ReportMetric(float64(lost)/secs/(1<<20), "MB/s")
		b.ReportMetric(float64(st.Repaired)/secs, "copies/s")
	}
}

// BenchmarkDeliveryDuringRepair: 4 KiB deliveries over 8 concurrent
// senders for a fixed time, first on the healthy cluster, then while the
// leader repairs a lost node; reports both rates and their ratio.
func BenchmarkDeliveryDuringRepair(b *testing.B) {
	for _, rate := range []int64{1 << 40, 16 << 20} {
		name := "unlimited"
		if rate < 1<<40 {
			name = fmt.Sprintf("%dMBps", rate>>20)
		}
		b.Run(name, func(b *testing.B) { deliveryDuringRepair(b, rate) })
	}
}

func deliveryDuringRepair(b *testing.B, rate int64) {
	for range b.N {
		b.StopTimer()
		c, l, victim := repairBenchCluster(b)
		l.limiter.rate = rate
		var live []*Node
		for _, n := range c.nodes {
			if n != victim {
				live = append(live, n)
			}
		}
		b.StartTimer()
		before := deliveryRate(b, live, 3*time.Second, nil)
		loseNode(b, c, l, victim)
		repairDone := make(chan struct{})
		go func() {
			defer close(repairDone)
			l.RepairRound(ctxT(b, 5*time.Minute))
		}()
		copiesBefore, start := l.repair.get().Repaired, time.Now()
		during := deliveryRate(b, aliveOf(c), 3*time.Second, repairDone)
		copied := l.repair.get().Repaired - copiesBefore
		secs := time.Since(start).Seconds()
		<-repairDone
		b.ReportMetric(before, "msgs/s-healthy")
		b.ReportMetric(during, "msgs/s-repairing")
		b.ReportMetric(during/before, "ratio")
		b.ReportMetric(float64(copied)*float64(repairBenchSize())/secs/(1<<20), "repair-MB/s-meanwhile")
	}
}

func aliveOf(c *testCluster) []*Node {
	var out []*Node
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

// deliveryRate delivers 4 KiB messages from 8 goroutines through nodes
// for d (or until stop closes) and returns messages per second.
func deliveryRate(b *testing.B, nodes []*Node, d time.Duration, stop <-chan struct{}) float64 {
	if len(nodes) == 0 {
		return 0
	}
	body := "Subject: load\r\n\r\n" + strings.Repeat("y", 4096)
	deadline := time.Now().Add(d)
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				n := nodes[(w+i)%len(nodes)]
				if _, err := n.Deliver(ctxT(b, 10*time.Second), Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err == nil {
					count.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds()
}

// BenchmarkRepairScan: the leader's periodic round on a healthy cluster
// of PM_SCAN_BODIES body records (20,000 unless set), with the scan
// (every round before the placement mark, and still the first after a
// change) and without it (repair_skip.go). The records name real members
// but no stored copies: a healthy round only reads the listings.
func BenchmarkRepairScan(b *testing.B) {
	c := newTestClusterWith(b, 3, func(cfg *Config) { cfg.RepairInterval = time.Hour })
	l := c.leader(5 * time.Second)
	mustApply(b, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(b, l, addMailbox("a@example.com"))
	waitFor(b, 10*time.Second, "members", func() bool { m, _ := l.State().Members(); return len(m) == 3 })
	n := envInt("PM_SCAN_BODIES", 20000)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				h := storage.HashBytes([]byte(strconv.FormatInt(i, 10)))
				mustApply(b, l, &fsm.Deliver{Hash: h.String(), Size: 4096, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
			}
		})
	}
	wg.Wait()
	ctx := ctxT(b, 5*time.Minute)
	round := func(b *testing.B, periodic bool) {
		for b.Loop() {
			if _, err := l.repairRound(ctx, periodic); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("scan", func(b *testing.B) {
		round(b, false)
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/body")
	})
	b.Run("skip", func(b *testing.B) { round(b, true) })
}
