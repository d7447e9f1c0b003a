package fsm

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bigSizes are the folder sizes of the large-operation benchmarks:
// PM_BENCH_BIG=10000,100000,1000000 to choose.
func bigSizes() []int {
	out := []int{10000}
	if v := os.Getenv("PM_BENCH_BIG"); v != "" {
		out = out[:0]
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.Atoi(f); err == nil && n > 0 {
				out = append(out, n)
			}
		}
	}
	return out
}

// fillFolder delivers n messages, each with its own body as real mail
// has, to folder of a@example.com, in raft batches of 1,000 entries.
func fillFolder(b testing.TB, a *applier, folder string, n int) {
	if folder != "INBOX" {
		a.must(&FolderCreate{Mailbox: "a@example.com", Name: folder})
	}
	a.applyInBatches(n, func(i int) Command {
		id := fmt.Sprintf("%s-%d", folder, i)
		return &Deliver{Hash: bodyHash(id), Size: 4096, Replicas: []string{"n1", "n2"},
			Mailboxes: []string{"a@example.com"}, Folder: folder, InternalDate: int64(i)}
	})
}

// timeApply applies c as one entry, as every replica does, and reports
// how long the apply held the state machine and what it allocated.
func timeApply(b *testing.B, a *applier, c Command) Result {
	data, err := EncodeAs(c, NewestEncoding)
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	wal0 := a.s.db.Metrics().WAL.BytesIn
	a.index++
	start := time.Now()
	r := a.s.ApplyBatch([]Entry{{Index: a.index, Data: data}})[0]
	took := time.Since(start)
	runtime.ReadMemStats(&m1)
	if r.Err != nil {
		b.Fatal(r.Err)
	}
	b.ReportMetric(float64(took.Milliseconds()), "apply-ms")
	b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/(1<<20), "alloc-MiB")
	b.ReportMetric(float64(len(data)), "entry-B")
	b.ReportMetric(float64(a.s.db.Metrics().WAL.BytesIn-wal0)/(1<<20), "batch-MiB")
	return r
}

// BenchmarkLargeOperationApply measures the one entry that a folder
// delete, mailbox removal, expunge, COPY or MOVE of a whole folder of N
// messages is: every replica applies it in one go, and every other
// commit (every delivery) waits behind it. Run with -benchtime 1x.
func BenchmarkLargeOperationApply(b *testing.B) {
	all := []UIDRange{{1, ^uint32(0)}}
	piece := []UIDRange{{1, 2000}}
	ops := []struct {
		name string
		cmd  func() Command
	}{
		{"FolderDelete", func() Command { return &FolderDelete{Mailbox: "a@example.com", Name: "Big"} }},
		{"MailboxRemove", func() Command { return &MailboxRemove{Address: "a@example.com"} }},
		{"Expunge", func() Command { return &Expunge{Mailbox: "a@example.com", Folder: "Big", UIDs: all} }},
		{"Copy", func() Command { return &Copy{Mailbox: "a@example.com", From: "Big", To: "Other", UIDs: all} }},
		{"Move", func() Command {
			return &Copy{Mailbox: "a@example.com", From: "Big", To: "Other", UIDs: all, Move: true}
		}},
		{"Store", func() Command {
			return &FlagsStore{Mailbox: "a@example.com", Folder: "Big", UIDs: all, Op: FlagsAdd, Flags: []string{`\Deleted`}}
		}},
		// One piece of node.DefaultEntryMessages (2,000) messages, as
		// node proposes them (node/pieces.go).
		{"ExpungePiece", func() Command { return &Expunge{Mailbox: "a@example.com", Folder: "Big", UIDs: piece} }},
		{"MovePiece", func() Command {
			return &Copy{Mailbox: "a@example.com", From: "Big", To: "Other", UIDs: piece, Move: true}
		}},
		{"CopyPiece", func() Command { return &Copy{Mailbox: "a@example.com", From: "Big", To: "Other", UIDs: piece} }},
	}
	for _, n := range bigSizes() {
		for _, op := range ops {
			b.Run(fmt.Sprintf("%s/N=%d", op.name, n), func(b *testing.B) {
				for b.Loop() {
					b.StopTimer()
					a := deliveryFixture(b)
					a.must(&FolderCreate{Mailbox: "a@example.com", Name: "Other"})
					start := time.Now()
					fillFolder(b, a, "Big", n)
					b.Logf("filled %d messages in %v", n, time.Since(start))
					b.StartTimer()
					r := timeApply(b, a, op.cmd())
					want := n
					if strings.HasSuffix(op.name, "Piece") {
						want = 2000
					}
					if cr, ok := r.Value.(CopyResult); ok && len(cr.Dst) != want {
						b.Fatalf("copied %d of %d", len(cr.Dst), want)
					}
					if u, ok := r.Value.([]uint32); ok && len(u) != want {
						b.Fatalf("expunged %d of %d", len(u), want)
					}
				}
			})
		}
	}
}
