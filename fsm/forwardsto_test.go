package fsm

import (
	"fmt"
	"slices"
	"testing"
)

// forwardsToCases runs a ForwardsTo test on a state below the gated
// encoding, where ForwardsTo reads every forward, and on one at it,
// where it reads the target index (forwardindex.go): the answers must
// be the same.
func forwardsToCases(t *testing.T, test func(t *testing.T, a *applier)) {
	for _, enc := range []int{0, gatedEncoding} {
		t.Run(fmt.Sprintf("encoding %d", enc), func(t *testing.T) {
			a := newApplier(t)
			if enc != 0 {
				a.raiseTo(enc)
			}
			test(t, a)
		})
	}
}

func TestForwardsTo(t *testing.T) { forwardsToCases(t, testForwardsTo) }

func testForwardsTo(t *testing.T, a *applier) {
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&DomainAdd{Name: "other.org"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "bob@example.com"}, {Address: "amy@example.com"}}})
	a.must(&ForwardAdd{Address: "team@example.com", Targets: []string{"amy@example.com", "Bob@Example.com"}})
	a.must(&ForwardAdd{Address: "sales@other.org", Targets: []string{"bob@example.com"}})
	a.must(&ForwardAdd{Address: "@other.org", Targets: []string{"bob@example.com"}})
	a.must(&ForwardAdd{Address: "amy-only@example.com", Targets: []string{"amy@example.com"}})
	a.must(&ForwardAdd{Address: "out@example.com", Targets: []string{"bob@elsewhere.net"}})

	addrs := func(fws []Forward) []string {
		var out []string
		for _, f := range fws {
			out = append(out, f.Address)
		}
		return out
	}
	got, err := a.s.ForwardsTo("BOB@example.com", 0)
	if want := []string{"team@example.com", "@other.org", "sales@other.org"}; err != nil || !slices.Equal(addrs(got), want) {
		t.Fatalf("forwards to bob: %q, %v; want %q", addrs(got), err, want)
	}
	if got, _ := a.s.ForwardsTo("bob@example.com", 1); len(got) != 1 {
		t.Errorf("limit 1 gave %d", len(got))
	}
	if got, _ := a.s.ForwardsTo("bob@elsewhere.net", 0); !slices.Equal(addrs(got), []string{"out@example.com"}) {
		t.Errorf("forwards to an outside address: %q", addrs(got))
	}
	if _, err := a.s.ForwardsTo("not an address", 0); err == nil {
		t.Error("a bad address was accepted")
	}
}

// A target with a sub-address (RFC 5233) delivers to the base mailbox
// when no entry of its own exists: it is listed for the base, since
// removing the base mailbox leaves it pointing nowhere. One with an
// entry of its own is not.
func TestForwardsToSubaddress(t *testing.T) { forwardsToCases(t, testForwardsToSubaddress) }

func testForwardsToSubaddress(t *testing.T, a *applier) {
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "bob@example.com"}, {Address: "bob+own@example.com"}}})
	a.must(&ForwardAdd{Address: "lists@example.com", Targets: []string{"Bob+Lists@example.com"}})
	a.must(&ForwardAdd{Address: "own@example.com", Targets: []string{"bob+own@example.com"}})
	a.must(&ForwardAdd{Address: "bob+fw@example.com", Targets: []string{"x@elsewhere.net"}})
	a.must(&ForwardAdd{Address: "fw@example.com", Targets: []string{"bob+fw@example.com"}})
	if r, err := a.s.Resolve("bob+lists@example.com"); err != nil || !slices.Equal(r.Mailboxes, []string{"bob@example.com"}) {
		t.Fatalf("bob+lists resolves to %+v, %v; want bob's mailbox", r, err)
	}
	got, err := a.s.ForwardsTo("bob@example.com", 0)
	var addrs []string
	for _, f := range got {
		addrs = append(addrs, f.Address)
	}
	if want := []string{"lists@example.com"}; err != nil || !slices.Equal(addrs, want) {
		t.Errorf("forwards to bob: %q, %v; want %q", addrs, err, want)
	}
}

// BenchmarkForwardsTo measures the scan of every forward of every
// domain: 100,000 forwards, one in ten with a target in the mailbox's
// domain, one in a thousand to the mailbox itself.
//
// At the gated encoding ForwardsTo reads the target index instead.
func BenchmarkForwardsTo(b *testing.B) {
	for _, enc := range []int{0, gatedEncoding} {
		b.Run(fmt.Sprintf("enc%d", enc), func(b *testing.B) { benchForwardsTo(b, enc) })
	}
}

func benchForwardsTo(b *testing.B, enc int) {
	a := newApplier(b)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "bob@example.com"}, {Address: "amy@example.com"}}})
	const n = 100_000
	for i := range n {
		targets := []string{fmt.Sprintf("x%d@elsewhere.net", i)}
		switch {
		case i%1000 == 0:
			targets = append(targets, "bob@example.com")
		case i%10 == 0:
			targets = append(targets, "amy@example.com")
		}
		a.must(&ForwardAdd{Address: fmt.Sprintf("f%d@example.com", i), Targets: targets})
	}
	if enc != 0 {
		a.raiseTo(enc)
	}
	b.ResetTimer()
	for b.Loop() {
		if got, err := a.s.ForwardsTo("bob@example.com", 0); err != nil || len(got) != n/1000 {
			b.Fatalf("%d, %v", len(got), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/forward")
}

// At the gated encoding ForwardsTo reads only the forwards the target
// index names: a forward record elsewhere that it cannot decode (planted
// here, where the scan of every forward would meet it) is not read.
func TestForwardsToReadsTheIndex(t *testing.T) {
	a := newApplier(t)
	a.raiseTo(gatedEncoding)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "bob@example.com"}}})
	a.must(&ForwardAdd{Address: "team@example.com", Targets: []string{"bob@example.com"}})
	plantRecord(t, a.s, forwardKey(mustAddr(t, "broken@example.com")), []byte(`{"targets":["bob@example.com"`))
	got, err := a.s.ForwardsTo("bob@example.com", 0)
	if err != nil || len(got) != 1 || got[0].Address != "team@example.com" {
		t.Fatalf("forwards to bob over the index: %+v, %v", got, err)
	}
}

// TestForwardsToAfter: a listing of the forwards that name an address
// goes on after the last one a page gave, so that pages of any size
// list each one once, in order, the sub-addresses' among the others.
func TestForwardsToAfter(t *testing.T) { forwardsToCases(t, testForwardsToAfter) }

func testForwardsToAfter(t *testing.T, a *applier) {
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&DomainAdd{Name: "other.org"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "bob@example.com"}}})
	for _, src := range []string{"b@example.com", "D@example.com", "f@other.org", "@other.org", "a@other.org"} {
		a.must(&ForwardAdd{Address: src, Targets: []string{"bob@example.com"}})
	}
	a.must(&ForwardAdd{Address: "c@example.com", Targets: []string{"bob+c@example.com"}}) // falls through to bob
	a.must(&ForwardAdd{Address: "e@other.org", Targets: []string{"x@elsewhere.net"}})
	all, err := a.s.ForwardsTo("bob@example.com", 0)
	want := []string{"b@example.com", "c@example.com", "D@example.com", "@other.org", "a@other.org", "f@other.org"}
	if got := forwardAddrs(all); err != nil || !slices.Equal(got, want) {
		t.Fatalf("every forward to bob: %q, %v; want %q", got, err, want)
	}
	for _, size := range []int{1, 2, 4} {
		var got []string
		after := ""
		for range 10 {
			page, err := a.s.ForwardsToAfter("bob@example.com", after, size)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, forwardAddrs(page)...)
			if len(page) < size {
				break
			}
			after = page[len(page)-1].Address
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: %q; want %q", size, got, want)
		}
	}
	// A key that is no forward's starts after where it would stand.
	if page, err := a.s.ForwardsToAfter("bob@example.com", "cz@EXAMPLE.com", 2); err != nil || !slices.Equal(forwardAddrs(page), want[2:4]) {
		t.Errorf("after cz@example.com: %q, %v; want %q", forwardAddrs(page), err, want[2:4])
	}
	if _, err := a.s.ForwardsToAfter("bob@example.com", "no domain", 2); err == nil {
		t.Error("an after that is no address was accepted")
	}
}

func forwardAddrs(fws []Forward) []string {
	var out []string
	for _, f := range fws {
		out = append(out, f.Address)
	}
	return out
}
