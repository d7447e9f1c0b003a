package fsm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// benchMailboxes is the directory size for lookup benchmarks; set
// PM_BENCH_MAILBOXES=1000000 for the full-scale figure.
func benchMailboxes() int {
	if n, err := strconv.Atoi(os.Getenv("PM_BENCH_MAILBOXES")); err == nil && n > 0 {
		return n
	}
	return 100000
}

// loaded caches one loaded directory for the whole benchmark run, so that
// the framework's repeated calls with growing b.N measure lookups, not
// loading. It lives only in the test binary.
var loaded struct {
	n   int
	s   *State
	dir string
}

func loadedDirectory(b *testing.B, n int) *State {
	if loaded.s == nil || loaded.n != n {
		dir, err := os.MkdirTemp("", "pm-fsm-bench")
		if err != nil {
			b.Fatal(err)
		}
		loaded.s, loaded.n, loaded.dir = loadInto(b, dir, n), n, dir
	}
	return loaded.s
}

func TestMain(m *testing.M) {
	code := m.Run()
	if loaded.s != nil {
		loaded.s.Close()
		os.RemoveAll(loaded.dir)
	}
	os.Exit(code)
}

// loadDirectory fills a state with n mailboxes in 10 domains, in batches
// of 5000 as the import path does.
func loadDirectory(b testing.TB, n int) *State {
	s := loadInto(b, b.TempDir(), n)
	b.Cleanup(func() { s.Close() })
	return s
}

func loadInto(b testing.TB, dir string, n int) *State {
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	idx := uint64(0)
	apply := func(c Command) {
		data, _ := Encode(c)
		idx++
		if r := s.ApplyBatch([]Entry{{Index: idx, Data: data}}); r[0].Err != nil {
			b.Fatal(r[0].Err)
		}
	}
	for d := 0; d < 10; d++ {
		apply(&DomainAdd{Name: fmt.Sprintf("domain%d.example", d)})
	}
	hash, _ := HashPassword("benchmark")
	for i := 0; i < n; i += 5000 {
		c := &MailboxAdd{}
		for j := i; j < min(i+5000, n); j++ {
			c.Mailboxes = append(c.Mailboxes, NewMailbox{Address: benchAddr(j), PasswordHash: hash})
		}
		apply(c)
	}
	// Measure a settled store, as a node is between bulk loads: memtables
	// flushed and background compactions finished.
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	for s.db.Metrics().Compact.NumInProgress > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	warm(b, s)
	return s
}

// warm reads every mailbox record once, as a node that has served mail
// for a while has: the figures are for a warm block cache.
func warm(b testing.TB, s *State) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("u\x00"), UpperBound: []byte("u\x01")})
	if err != nil {
		b.Fatal(err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		it.ValueAndErr()
	}
	it.Close()
}

func benchAddr(i int) string { return fmt.Sprintf("user%d@domain%d.example", i, i%10) }

// BenchmarkResolve measures the RCPT-time lookup on a loaded directory and
// reports its latency percentiles.
func BenchmarkResolve(b *testing.B) {
	n := benchMailboxes()
	s := loadedDirectory(b, n)
	rng := rand.New(rand.NewPCG(1, 2))
	lat := make([]time.Duration, 0, b.N)
	before := s.db.Metrics().BlockCache
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		addr := benchAddr(rng.IntN(n))
		start := time.Now()
		r, err := s.Resolve(addr)
		lat = append(lat, time.Since(start))
		if err != nil || len(r.Mailboxes) != 1 {
			b.Fatalf("%s: %v %v", addr, r, err)
		}
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	after := s.db.Metrics().BlockCache
	b.ReportMetric(float64(after.Misses-before.Misses)/float64(b.N), "cache-misses/op")
}

// BenchmarkApplyMailboxAdd measures applying single-mailbox commands in
// raft-sized batches of 64 entries.
func BenchmarkApplyMailboxAdd(b *testing.B) {
	s := loadDirectory(b, 0)
	idx := uint64(100)
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		var entries []Entry
		for j := i; j < min(i+64, b.N); j++ {
			data, _ := Encode(&MailboxAdd{Mailboxes: []NewMailbox{{Address: benchAddr(j)}}})
			idx++
			entries = append(entries, Entry{Index: idx, Data: data})
		}
		for _, r := range s.ApplyBatch(entries) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

// BenchmarkViewAfterOneChange re-reads a folder of 10,000 messages after
// one message's flags changed, as every IMAP session's poll does: "fresh"
// decodes every record, "reusing" decodes against the previous view, and
// "since" reads only the changed message (the change log). Each op
// includes applying the change.
func BenchmarkViewAfterOneChange(b *testing.B) {
	const n = 10000
	a := deliveryFixture(b)
	for i := range n {
		a.must(&Deliver{Hash: bodyHash(fmt.Sprint(i)), Size: 1000, Replicas: []string{"n1", "n2"},
			Mailboxes: []string{"a@example.com"}, Flags: []string{`\Seen`}})
	}
	for _, mode := range []string{"fresh", "reusing", "since"} {
		b.Run(mode, func(b *testing.B) {
			prevF, prev, err := a.s.View("a@example.com", "INBOX")
			if err != nil || len(prev) != n {
				b.Fatalf("%d messages, %v", len(prev), err)
			}
			ops := []FlagOp{FlagsAdd, FlagsRemove}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				a.must(&FlagsStore{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{uint32(1 + i%n), uint32(1 + i%n)}},
					Op: ops[i/n%2], Flags: []string{`\Flagged`}})
				var msgs []Message
				f := prevF
				switch mode {
				case "fresh":
					f, msgs, err = a.s.View("a@example.com", "INBOX")
				case "reusing":
					f, msgs, err = a.s.ViewReusing("a@example.com", "INBOX", prev)
				default:
					f, msgs, err = a.s.ViewSince("a@example.com", "INBOX", prevF, prev)
				}
				if err != nil || len(msgs) != n {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
				prevF, prev = f, msgs
				i++
			}
		})
	}
}

// BenchmarkViewOfEmptiedInbox is a POP3 mailbox's day: n messages
// arrive, each session retrieves and deletes what is there (ten at a
// time), and then a new session opens the empty INBOX. The view's cost
// is what a scan pays to get past the expunged messages.
func BenchmarkViewOfEmptiedInbox(b *testing.B) {
	for _, n := range []int{5000, 30000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			a := deliveryFixture(b)
			for i := range n {
				a.must(&Deliver{Hash: bodyHash(fmt.Sprint(i)), Size: 1000, Replicas: []string{"n1", "n2"},
					Mailboxes: []string{"a@example.com"}})
				if i%10 == 9 {
					a.must(&Expunge{Mailbox: "a@example.com", Folder: "INBOX", UIDs: []UIDRange{{1, ^uint32(0)}}})
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, msgs, err := a.s.View("a@example.com", "INBOX"); err != nil || len(msgs) != 0 {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
			}
		})
	}
}

// BenchmarkRemoveMailboxesAmidDeliveries is a bulk deprovisioning on a
// live cluster: each op removes one mailbox (holding one message) and
// then applies one delivery to another, as the two interleave in the
// raft log. Run it with a fixed -benchtime Nx of at most 5,000.
func BenchmarkRemoveMailboxesAmidDeliveries(b *testing.B) {
	const boxes = 5000
	a := deliveryFixture(b)
	var add MailboxAdd
	for i := range boxes {
		add.Mailboxes = append(add.Mailboxes, NewMailbox{Address: fmt.Sprintf("old%d@example.com", i)})
	}
	a.must(&add)
	for i := range boxes {
		a.must(&Deliver{Hash: bodyHash("x"), Size: 100, Replicas: []string{"n1", "n2"}, Mailboxes: []string{add.Mailboxes[i].Address}})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == boxes {
			b.Fatalf("more than %d ops: use -benchtime Nx", boxes)
		}
		a.must(&MailboxRemove{Address: add.Mailboxes[i].Address})
		a.must(&Deliver{Hash: bodyHash(fmt.Sprint(i)), Size: 4096, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
		i++
	}
}

// BenchmarkApplyDeliverBatch measures a replica's share of one delivery:
// decoding and applying Deliver entries that arrive in raft batches of 6,
// each a new 4 KiB body for one mailbox, as under the SMTP load of
// BENCHMARKS.md, with the command in each encoding. ns/op is per entry,
// and includes the proposer's encoding.
func BenchmarkApplyDeliverBatch(b *testing.B) {
	for _, bc := range []struct {
		name string
		enc  int
	}{{"json", EncodingJSON}, {"binary", EncodingBinary}} {
		b.Run(bc.name, func(b *testing.B) { benchDeliverBatches(b, deliveryFixture(b), bc.enc) })
	}
}

// BenchmarkApplyDeliverPastDedupeWindow is the binary case of
// BenchmarkApplyDeliverBatch in a cluster's steady state: more than
// dedupeWindow entries have been applied, so deliveries also expire old
// delivery records (one per ten deliveries here).
func BenchmarkApplyDeliverPastDedupeWindow(b *testing.B) {
	a := deliveryFixture(b)
	for i := range dedupeWindow / 10 {
		a.index += 9
		id := fmt.Sprintf("old-%d", i)
		a.must(&Deliver{ID: id, Hash: bodyHash(id), Size: 4096, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"b@example.com"}})
	}
	benchDeliverBatches(b, a, EncodingBinary)
}

func benchDeliverBatches(b *testing.B, a *applier, enc int) {
	const batch = 6
	entries := make([]Entry, 0, batch)
	seq := 0
	b.ReportAllocs()
	for b.Loop() {
		seq++
		data, err := EncodeAs(&Deliver{ID: fmt.Sprintf("%032x", seq), Hash: bodyHash(strconv.Itoa(seq)), Size: 4096,
			Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}, InternalDate: int64(seq)}, enc)
		if err != nil {
			b.Fatal(err)
		}
		a.index++
		entries = append(entries, Entry{Index: a.index, Data: data})
		if len(entries) == batch {
			for _, r := range a.s.ApplyBatch(entries) {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
			entries = entries[:0]
		}
	}
}

// BenchmarkQueueLeaseAfterChurn measures a lease (an apply on every
// replica, proposed on each kick of the outbound queue) after 20,000
// forwarded messages went through the queue: created, leased, sent and
// removed, as on an installation that forwards much of its mail. One
// entry is due at each lease.
func BenchmarkQueueLeaseAfterChurn(b *testing.B) {
	a := deliveryFixture(b)
	now := int64(1_000_000)
	forward := func(i int) string {
		id := fmt.Sprintf("fwd-%d", i)
		r := a.apply(&Deliver{ID: id, Hash: bodyHash(id), Size: 4096, Replicas: []string{"n1", "n2"},
			Queue: &QueuePart{From: "s@far.org", Recipients: []string{"x@other.net"}, NextAttempt: now}})
		if r.Err != nil {
			b.Fatal(r.Err)
		}
		return r.Value.(DeliverResult).Queued
	}
	lease := func() []QueueEntry {
		r := a.apply(&QueueLease{Holder: "w", Now: now, TTL: 60_000, Limit: 100})
		if r.Err != nil {
			b.Fatal(r.Err)
		}
		return r.Value.([]QueueEntry)
	}
	for i := range 20000 {
		forward(i)
		for _, e := range lease() {
			a.must(&QueueRemove{ID: e.ID})
		}
		now++
	}
	i := 20000
	for b.Loop() {
		forward(i)
		for _, e := range lease() {
			a.must(&QueueRemove{ID: e.ID})
		}
		i++
		now++
	}
}
