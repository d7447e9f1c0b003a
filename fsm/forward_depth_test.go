package fsm

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// chainTo adds forwards name0 -> name1 -> ... -> name<n-1> -> target, from
// the bottom up, and returns name0; each passes the check alone.
func chainTo(t *testing.T, a *applier, name string, n int, target string) string {
	t.Helper()
	for i := n - 1; i >= 0; i-- {
		src := fmt.Sprintf("%s%d@x.com", name, i)
		if r := a.applyAs(&ForwardAdd{Address: src, Targets: []string{target}, Fallbacks: true}, EncodingJSON7); r.Err != nil {
			t.Fatalf("%s -> %s: %v", src, target, r.Err)
		}
		target = src
	}
	return target
}

func depthFixture(t *testing.T) *applier {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "x.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "m@x.com"}, {Address: "join@x.com"}}})
	return a
}

// The loop check measured depth only below a new forward's targets, so
// a forward that joins two chains, each within the 10 levels delivery
// follows, let in a chain deeper than that, and delivery then refused
// mail to its top (550 at RCPT) that the configuration had accepted.
// From the gated encoding ForwardAdd counts the forwards above its
// address too (those whose targets' lookups land on it: exactly, through
// the sub-address base, or through the domain's catch-all) and refuses
// a forward that would make any chain through it deeper than 10.
func TestForwardDepthCountsChainsAbove(t *testing.T) {
	for _, tc := range []struct {
		name string
		// via is how the upper chain reaches join@x.com.
		via string
	}{
		{"exact", "join@x.com"},
		{"sub-address", "join+list@x.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := depthFixture(t)
			a.raiseTo(gatedEncoding)
			lower := chainTo(t, a, "low", 6, "m@x.com") // low0 is 6 deep
			upper := chainTo(t, a, "up", 4, tc.via)     // up0 reaches join@ 4 levels down
			join := &ForwardAdd{Address: "join@x.com", Targets: []string{lower}, Fallbacks: true}
			if r := a.applyAs(join, gatedEncoding); !errors.Is(r.Err, ErrForwardLoop) {
				t.Fatalf("joining a 4-level chain above to a 7-level one below: %v, want ErrForwardLoop", r.Err)
			}
			if _, err := a.s.Resolve(upper); err != nil {
				t.Fatalf("%s after the refused join: %v", upper, err)
			}
			// One level less below: 4 above + 6 = 10, which delivery takes.
			ok := &ForwardAdd{Address: "join@x.com", Targets: []string{"low1@x.com"}, Fallbacks: true}
			if r := a.applyAs(ok, gatedEncoding); r.Err != nil {
				t.Fatalf("a join 10 deep: %v", r.Err)
			}
			if _, err := a.s.Resolve(upper); err != nil {
				t.Fatalf("%s, 10 deep: %v", upper, err)
			}
		})
	}
}

// A catch-all above: a forward to an address the domain does not know
// is caught by @y.com, so a catch-all added there sits one level below it.
func TestForwardDepthThroughACatchAll(t *testing.T) {
	a := depthFixture(t)
	a.must(&DomainAdd{Name: "y.com"})
	a.raiseTo(gatedEncoding)
	lower := chainTo(t, a, "low", 6, "m@x.com")
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "keep@y.com"}}})
	if r := a.applyAs(&ForwardAdd{Address: "@y.com", Targets: []string{"keep@y.com"}, Fallbacks: true}, EncodingJSON7); r.Err != nil {
		t.Fatal(r.Err)
	}
	upper := chainTo(t, a, "up", 4, "nobody@y.com")
	c := &ForwardAdd{Address: "@y.com", Targets: []string{lower}, Replace: true, Fallbacks: true}
	if r := a.applyAs(c, gatedEncoding); !errors.Is(r.Err, ErrForwardLoop) {
		t.Fatalf("a catch-all 4 levels below a chain, over 7 levels: %v, want ErrForwardLoop", r.Err)
	}
	if _, err := a.s.Resolve(upper); err != nil {
		t.Fatalf("%s after the refused catch-all: %v", upper, err)
	}
}

// Alone, a forward whose target is 10 levels deep puts its own address
// at 11, which delivery refuses: the first rule let it in.
func TestForwardDepthCountsTheNewLevel(t *testing.T) {
	a := depthFixture(t)
	a.raiseTo(gatedEncoding)
	top := chainTo(t, a, "low", 10, "m@x.com")
	if _, err := a.s.Resolve(top); err != nil {
		t.Fatalf("a chain 10 deep: %v", err)
	}
	c := &ForwardAdd{Address: "over@x.com", Targets: []string{top}, Fallbacks: true}
	if r := a.applyAs(c, gatedEncoding); !errors.Is(r.Err, ErrForwardLoop) {
		t.Fatalf("a forward to a chain 10 deep: %v, want ErrForwardLoop", r.Err)
	}
}

// Below the gated encoding the first rule holds, on every replica alike:
// the join is taken and delivery to the top of the chain fails.
func TestForwardDepthBelowTheGate(t *testing.T) {
	a := depthFixture(t)
	a.raiseTo(EncodingJSON9)
	lower := chainTo(t, a, "low", 6, "m@x.com")
	upper := chainTo(t, a, "up", 4, "join@x.com")
	join := &ForwardAdd{Address: "join@x.com", Targets: []string{lower}, Fallbacks: true}
	if r := a.applyAs(join, EncodingJSON9); r.Err != nil {
		t.Fatalf("below the gate the join is taken: %v", r.Err)
	}
	if _, err := a.s.Resolve(upper); !errors.Is(err, ErrForwardLoop) {
		t.Fatalf("%s after the join below the gate: %v, want nested too deep", upper, err)
	}
	if n := countPrefix(t, a.s, []byte(targetIndexPrefix)); n != 0 {
		t.Fatalf("below the gate %d target index keys, want none", n)
	}
}

func countPrefix(t *testing.T, s *State, p []byte) int {
	t.Helper()
	n := 0
	if err := s.view(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		return it.Close()
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// Forwards made before the raise are indexed by the raise itself, so the
// check finds the chains above a new forward however old they are; and
// after adds, replacements and removals the index is exactly the one the
// forwards left would make.
func TestForwardIndexFromTheRaiseOn(t *testing.T) {
	a := depthFixture(t)
	a.raiseTo(EncodingJSON9)
	lower := chainTo(t, a, "low", 6, "m@x.com")
	upper := chainTo(t, a, "up", 4, "join@x.com")
	a.raiseTo(gatedEncoding)
	join := &ForwardAdd{Address: "join@x.com", Targets: []string{lower}, Fallbacks: true}
	if r := a.applyAs(join, gatedEncoding); !errors.Is(r.Err, ErrForwardLoop) {
		t.Fatalf("a join 11 deep over forwards made before the raise: %v, want ErrForwardLoop", r.Err)
	}
	// Replace the top of the upper chain to skip a level: 3 above + 7.
	skip := &ForwardAdd{Address: "up2@x.com", Targets: []string{"join@x.com", "m@x.com"}, Replace: true, Fallbacks: true}
	if r := a.applyAs(skip, gatedEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := a.applyAs(&ForwardRemove{Address: "up3@x.com"}, gatedEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := a.applyAs(join, gatedEncoding); r.Err != nil {
		t.Fatalf("the join 10 deep once a level is gone: %v", r.Err)
	}
	if _, err := a.s.Resolve(upper); err != nil {
		t.Fatalf("%s: %v", upper, err)
	}
	got := dumpPrefix(t, a.s, []byte(targetIndexPrefix))
	want := []string{}
	fws, err := a.s.Forwards("x.com", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fw := range fws {
		src, _ := ParseForwardSource(fw.Address)
		for _, tg := range fw.Targets {
			want = append(want, string(targetIndexKey(mustAddr(t, tg), addrPart(src))))
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("target index:\n%q\nwant, from the forwards:\n%q", got, want)
	}
}

func dumpPrefix(t *testing.T, s *State, p []byte) []string {
	t.Helper()
	out := []string{}
	if err := s.view(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			out = append(out, string(it.Key()))
		}
		return it.Close()
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// The raise indexes the forwards a page at a time (indexPage); more than
// a page of them are all indexed, once.
func TestForwardIndexAtTheRaiseCoversEveryPage(t *testing.T) {
	a := depthFixture(t)
	a.raiseTo(EncodingJSON9)
	n := indexPage + 10
	entries := make([]Entry, 0, n)
	for i := range n {
		data, err := EncodeAs(&ForwardAdd{Address: fmt.Sprintf("f%05d@x.com", i), Targets: []string{"m@x.com", "out@elsewhere.example"}, Fallbacks: true}, EncodingJSON9)
		if err != nil {
			t.Fatal(err)
		}
		a.index++
		entries = append(entries, Entry{Index: a.index, Data: data})
	}
	for _, r := range a.s.ApplyBatch(entries) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	a.raiseTo(gatedEncoding)
	if got := countPrefix(t, a.s, []byte(targetIndexPrefix)); got != 2*n {
		t.Fatalf("%d index keys for %d forwards of 2 targets", got, n)
	}
}
