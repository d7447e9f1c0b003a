package fsm

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkForwardAdd: one ForwardAdd and the ForwardRemove that undoes
// it, over 100,000 forwards of which 10,000 name amy@, below the gated
// encoding (the first rule) and at it (the chain depth check and the
// target index). "alias" adds a forward to amy@ (the common case: no
// forward lands on the new address); "fan-in" puts a forward at amy@
// herself, so that the 10,000 forwards naming her are its first level
// above, each looked up for a level more; "catch-all" adds @example.com,
// whose lookups are every address of the domain that forwards name.
// raise-ms is the entry that raised the setting (at 11 it indexes every
// forward).
func BenchmarkForwardAdd(b *testing.B) {
	for _, enc := range []int{EncodingJSON9, gatedEncoding} {
		a, raise := forwardBenchState(b, enc)
		for _, tc := range []struct {
			name string
			add  *ForwardAdd
		}{
			{"alias", &ForwardAdd{Address: "new@example.com", Targets: []string{"amy@example.com"}, Fallbacks: true}},
			{"fan-in", &ForwardAdd{Address: "amy@example.com", Targets: []string{"bob@example.com"}, KeepCopy: true, Fallbacks: true}},
			{"catch-all", &ForwardAdd{Address: "@example.com", Targets: []string{"bob@example.com"}, Fallbacks: true}},
		} {
			b.Run(fmt.Sprintf("enc%d/%s", enc, tc.name), func(b *testing.B) {
				a.t = b
				add, err := EncodeAs(tc.add, enc)
				if err != nil {
					b.Fatal(err)
				}
				rm, err := EncodeAs(&ForwardRemove{Address: tc.add.Address}, enc)
				if err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					for _, data := range [][]byte{add, rm} {
						a.index++
						if r := a.s.ApplyBatch([]Entry{{Index: a.index, Data: data}})[0]; r.Err != nil {
							b.Fatal(r.Err)
						}
					}
				}
				b.ReportMetric(float64(raise.Microseconds())/1000, "raise-ms")
			})
		}
	}
}

// forwardBenchState builds the 100,000 forwards below the gate, in
// batches, then raises the setting to enc and times that entry.
func forwardBenchState(b *testing.B, enc int) (*applier, time.Duration) {
	a := newApplier(b)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "bob@example.com"}, {Address: "amy@example.com"}}})
	a.raiseTo(EncodingJSON9)
	const n, batch = 100_000, 1000
	for i := 0; i < n; i += batch {
		entries := make([]Entry, 0, batch)
		for j := i; j < i+batch; j++ {
			targets := []string{fmt.Sprintf("x%d@elsewhere.net", j)}
			if j%10 == 0 {
				targets = append(targets, "amy@example.com")
			}
			data, err := EncodeAs(&ForwardAdd{Address: fmt.Sprintf("f%d@example.com", j), Targets: targets, Fallbacks: true}, EncodingJSON9)
			if err != nil {
				b.Fatal(err)
			}
			a.index++
			entries = append(entries, Entry{Index: a.index, Data: data})
		}
		for _, r := range a.s.ApplyBatch(entries) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	start := time.Now()
	a.raiseTo(enc)
	return a, time.Since(start)
}
