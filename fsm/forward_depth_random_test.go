package fsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// From the gated encoding, random forward adds, replacements and
// removals, over addresses with sub-addresses and catch-alls, with
// mailboxes made and removed among them: every forward add accepted
// into a directory where every address resolved leaves every address
// resolving (no chain deeper than delivery follows, through any
// lookup), and after every entry the target index holds exactly the
// keys the forwards make. The chains are built to reach the limit.
func TestForwardDepthAndIndexOverRandomDirectories(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomDirectory(t, seed, 600) })
	}
}

func randomDirectory(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7))
	a := newApplier(t)
	domains := []string{"x.com", "y.com"}
	for _, d := range domains {
		a.must(&DomainAdd{Name: d})
	}
	a.raiseTo(gatedEncoding)
	locals := []string{"ghost", "ghost+t"}
	for i := range 14 {
		locals = append(locals, fmt.Sprintf("l%d", i), fmt.Sprintf("l%d+t", i))
	}
	var addrs []string
	for _, d := range domains {
		for _, l := range locals {
			addrs = append(addrs, l+"@"+d)
		}
	}
	sources := append(slices.Clone(addrs), "@x.com", "@y.com")
	tooDeep := func() string {
		for _, ad := range addrs {
			if _, err := a.s.Resolve(ad); errors.Is(err, ErrForwardLoop) {
				return ad + ": " + err.Error()
			}
		}
		return ""
	}
	for step := range steps {
		deepBefore := tooDeep()
		c := randomDirectoryCommand(rng, addrs, sources)
		r := a.applyAs(c, gatedEncoding)
		if _, add := c.(*ForwardAdd); add && r.Err == nil && deepBefore == "" {
			if why := tooDeep(); why != "" {
				t.Fatalf("step %d: %+v accepted, then %s", step, c, why)
			}
		}
		if got, want := dumpPrefix(t, a.s, []byte(targetIndexPrefix)), indexFromForwards(t, a.s, domains); !slices.Equal(got, want) {
			t.Fatalf("step %d, after %+v: target index\n%q\nwant, from the forwards:\n%q", step, c, got, want)
		}
	}
}

// randomDirectoryCommand picks a forward add (most often to the next
// few addresses, so that chains grow long), a forward removal, or a
// mailbox made or removed.
func randomDirectoryCommand(rng *rand.Rand, addrs, sources []string) Command {
	switch k := rng.IntN(10); {
	case k < 6:
		si := rng.IntN(len(sources))
		var ts []string
		for range 1 + rng.IntN(2) {
			if rng.IntN(3) > 0 && si+1 < len(addrs) {
				ts = append(ts, addrs[si+1+rng.IntN(min(3, len(addrs)-si-1))])
			} else {
				ts = append(ts, addrs[rng.IntN(len(addrs))])
			}
		}
		return &ForwardAdd{Address: sources[si], Targets: ts, Replace: rng.IntN(2) == 0, Fallbacks: true}
	case k < 7:
		return &ForwardRemove{Address: sources[rng.IntN(len(sources))]}
	case k < 9:
		return &MailboxAdd{Mailboxes: []NewMailbox{{Address: addrs[rng.IntN(len(addrs))]}}}
	default:
		return &MailboxRemove{Address: addrs[rng.IntN(len(addrs))]}
	}
}

// indexFromForwards is the target index the forwards of domains make.
func indexFromForwards(t *testing.T, s *State, domains []string) []string {
	t.Helper()
	want := []string{}
	for _, d := range domains {
		fws, err := s.Forwards(d, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, fw := range fws {
			src, err := ParseForwardSource(fw.Address)
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range fw.Targets {
				want = append(want, string(targetIndexKey(mustAddr(t, tg), addrPart(src))))
			}
		}
	}
	slices.Sort(want)
	return want
}
