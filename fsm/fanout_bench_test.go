package fsm

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fanOutDirectory makes lists forwards of per mailboxes each in one
// domain, and a forward all@ naming every list: mail to all@ reaches
// lists*per mailboxes, a company-wide list of department lists.
func fanOutDirectory(b testing.TB, lists, per int) *State {
	a := newApplier(b)
	apply := a.must
	apply(&DomainAdd{Name: "fan.example"})
	var top []string
	for l := 0; l < lists; l++ {
		add := &MailboxAdd{}
		fw := &ForwardAdd{Address: fmt.Sprintf("list%d@fan.example", l)}
		for i := 0; i < per; i++ {
			a := fmt.Sprintf("user%d.%d@fan.example", l, i)
			add.Mailboxes = append(add.Mailboxes, NewMailbox{Address: a})
			fw.Targets = append(fw.Targets, a)
		}
		apply(add)
		apply(fw)
		top = append(top, fw.Address)
	}
	apply(&ForwardAdd{Address: "all@fan.example", Targets: top})
	return a.s
}

// BenchmarkResolveFanOut is the RCPT-time lookup of an address that
// reaches 100 lists of 100 mailboxes each.
func BenchmarkResolveFanOut(b *testing.B) {
	for _, per := range []int{10, 100} {
		b.Run(fmt.Sprintf("mailboxes=%d", 100*per), func(b *testing.B) {
			s := fanOutDirectory(b, 100, per)
			for b.Loop() {
				r, err := s.Resolve("all@fan.example")
				if err != nil || len(r.Mailboxes) != 100*per {
					b.Fatalf("%d mailboxes, %v", len(r.Mailboxes), err)
				}
			}
		})
	}
}

// Two lists that share members and name the same outside addresses,
// both longer than a list is scanned (listScan): the lookup lists every
// mailbox and outside address once, in the order first met, and a
// mailbox being removed once among Removing.
func TestResolveFanOutListsEachOnce(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "fan.example"})
	var want []string
	add := &MailboxAdd{}
	for i := range 3 * listScan {
		m := fmt.Sprintf("m%d@fan.example", i)
		add.Mailboxes = append(add.Mailboxes, NewMailbox{Address: m})
		want = append(want, m)
	}
	a.must(add)
	removing := true
	if r := a.applyAs(&MailboxUpdate{Address: want[2*listScan-1], Removing: &removing}, NewestEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	outside := []string{"x@outside.example", "y@outside.example"}
	first := append(slices.Clone(want[:2*listScan]), outside...)
	// The second list names its members by sub-address (RFC 5233): each
	// is looked up afresh and lands on a mailbox already listed.
	second := slices.Clone(outside)
	for _, m := range want[listScan/2:] {
		second = append(second, strings.Replace(m, "@", "+b@", 1))
	}
	a.must(&ForwardAdd{Address: "first@fan.example", Targets: first})
	a.must(&ForwardAdd{Address: "second@fan.example", Targets: second})
	a.must(&ForwardAdd{Address: "all@fan.example", Targets: []string{"first@fan.example", "second@fan.example", "first@fan.example"}})
	r, err := a.s.Resolve("all@fan.example")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Mailboxes, want) {
		t.Errorf("mailboxes %v, want %v", r.Mailboxes, want)
	}
	if !slices.Equal(r.External, outside) {
		t.Errorf("outside addresses %v, want %v", r.External, outside)
	}
	if !slices.Equal(r.Removing, want[2*listScan-1:2*listScan]) {
		t.Errorf("being removed %v", r.Removing)
	}
	if r.Own != "" {
		t.Errorf("a forward's resolution names %q its own mailbox", r.Own)
	}
	for _, addr := range []string{"m3@fan.example", "M3+x@fan.example"} {
		if r, err := a.s.Resolve(addr); err != nil || r.Own != "m3@fan.example" {
			t.Errorf("%s: own mailbox %q (%v), want m3@fan.example", addr, r.Own, err)
		}
	}
}

// BenchmarkResolveSubaddressRcpts is one transaction's RCPTs: 1,000
// sub-addresses (all+1@, all+2@, ...) of an address that reaches 100
// lists of 100 mailboxes, each looked up on its own (memo=none, as
// before the transaction's memo) or with the transaction's memo.
func BenchmarkResolveSubaddressRcpts(b *testing.B) {
	s := fanOutDirectory(b, 100, 100)
	for _, kept := range []bool{false, true} {
		name := "memo=none"
		if kept {
			name = "memo=transaction"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				var memo *ExpansionMemo
				if kept {
					memo = NewExpansionMemo()
				}
				for i := range 1000 {
					r, err := s.ResolveIn(fmt.Sprintf("all+%d@fan.example", i), memo, false)
					if err != nil || len(r.Mailboxes) != 10000 {
						b.Fatalf("%d mailboxes, %v", len(r.Mailboxes), err)
					}
				}
			}
		})
	}
}
