package node

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"powermail/fsm"
)

// BenchmarkRemoveCheck: the body check of `cluster remove` for a node
// holding PM_REMOVE_BODIES bodies (5,000 unless set) of PM_REMOVE_SIZE
// bytes (4 KiB unless set, attachment-like), each also on one other
// member, all intact: three nodes in this process at R=2. "first" is
// the look before the member record goes, which has every other copy
// read back and checked (removeverify.go); "second" is the look after,
// which reuses the first's findings and reads only the records.
func BenchmarkRemoveCheck(b *testing.B) {
	c := newTestClusterWith(b, 3, func(cfg *Config) { cfg.RepairInterval = time.Hour })
	l := c.leader(5 * time.Second)
	mustApply(b, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(b, l, addMailbox("a@example.com"))
	waitFor(b, 10*time.Second, "members", func() bool { m, _ := l.State().Members(); return len(m) == 3 })
	fs := c.followers(l)
	gone, other := fs[0], fs[1]
	n, size := envInt("PM_REMOVE_BODIES", 5000), envInt("PM_REMOVE_SIZE", 4096)
	ctx := ctxT(b, 10*time.Minute)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				body := []byte(fmt.Sprintf("Subject: %d\r\n\r\n%s", i, attachment(rng, size)))
				var hash string
				for _, f := range fs {
					h, _, err := f.bodies.Put(ctx, bytes.NewReader(body), nil)
					if err != nil {
						b.Error(err)
						return
					}
					hash = h.String()
				}
				mustApply(b, l, &fsm.Deliver{Hash: hash, Size: int64(len(body)), Replicas: []string{gone.ID(), other.ID()},
					Mailboxes: []string{"a@example.com"}, InternalDate: time.Now().UnixMilli()})
			}
		})
	}
	wg.Wait()
	waitFor(b, 10*time.Second, "the followers to count for a removal", func() bool {
		up, err := l.answeringMembers(ctx, "")
		return err == nil && up[gone.ID()] && up[other.ID()]
	})
	var found *verifiedCopies
	perBody := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/body")
	}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			var err error
			if found, err = l.removalKeepsBodies(ctx, gone.ID(), nil); err != nil {
				b.Fatal(err)
			}
		}
		perBody(b)
	})
	b.Run("second", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.removalKeepsBodies(ctx, gone.ID(), found); err != nil {
				b.Fatal(err)
			}
		}
		perBody(b)
	})
}
