package fsm

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// naiveResolution is the reference a delivery lookup is checked
// against: every path followed in full, nothing remembered.
type naiveResolution struct {
	r       pebble.Reader
	top     Address
	out     Resolution
	deepest int
}

func (n *naiveResolution) add(list *[]string, addr string) {
	for _, x := range *list {
		if x == addr {
			return
		}
	}
	*list = append(*list, addr)
}

func (n *naiveResolution) expand(a Address, depth int) error {
	n.deepest = max(n.deepest, depth)
	if depth > maxForwardDepth {
		return errorf(ErrForwardLoop, "forwarding of %s is nested more than %d deep", n.top, maxForwardDepth)
	}
	candidates := []Address{a}
	if base := subaddressBase(a.Local); base != "" {
		candidates = append(candidates, Address{Local: base, Domain: a.Domain})
	}
	candidates = append(candidates, Address{Domain: a.Domain})
	for _, c := range candidates {
		found, err := n.exact(c, depth)
		if err != nil || found {
			return err
		}
	}
	return errorf(ErrNotFound, "no mailbox %s", a)
}

func (n *naiveResolution) exact(a Address, depth int) (bool, error) {
	var mb Mailbox
	has := false
	if a.Local != "" {
		var err error
		if has, err = getJSON(n.r, mailboxKey(a), &mb); err != nil {
			return false, err
		}
	}
	if !has || mb.HasForward {
		var fw Forward
		ok, err := getJSON(n.r, forwardKey(a), &fw)
		if err != nil {
			return false, err
		}
		if ok {
			left := 0
			for _, t := range fw.Targets {
				ta, err := ParseAddress(t)
				if err != nil {
					return false, err
				}
				hosted, err := hasKey(n.r, domainKey(ta.Domain))
				if err != nil {
					return false, err
				}
				if !hosted {
					n.add(&n.out.External, ta.String())
					left++
					continue
				}
				err = n.expand(ta, depth+1)
				if errors.Is(err, ErrNotFound) {
					continue
				}
				if err != nil {
					return false, err
				}
				left++
			}
			if left == 0 && !fw.KeepCopy {
				return false, errorf(ErrNotFound, "forward %s: none of its targets exists any more", a)
			}
			if !fw.KeepCopy {
				return true, nil
			}
		}
		if !has {
			return ok, nil
		}
	}
	n.add(&n.out.Mailboxes, mb.Address)
	if depth == 0 {
		n.out.Own = mb.Address
	}
	if mb.QuotaBytes > 0 && mb.UsedBytes >= mb.QuotaBytes {
		n.add(&n.out.OverQuota, mb.Address)
	}
	if mb.Removing {
		n.add(&n.out.Removing, mb.Address)
	}
	return true, nil
}

// putRecords writes records as apply stores them, without apply's
// checks: the graphs below have loops and chains deeper than delivery
// follows, which ForwardAdd refuses, so that lookups meet the limit.
func putRecords(t *testing.T, s *State, recs map[string]any) {
	t.Helper()
	b := s.db.NewBatch()
	defer b.Close()
	for k, v := range recs {
		raw, err := encodeRecord(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Set([]byte(k), raw, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// randomForwardGraph stores mailboxes and forwards over two hosted
// domains: chains (each address forwarding to the next few), loops,
// sub-address and catch-all targets, missing and outside targets,
// forwards that keep a copy, full mailboxes and mailboxes being removed.
func randomForwardGraph(t *testing.T, s *State, rng *rand.Rand) []string {
	t.Helper()
	recs := map[string]any{}
	domains := []string{"x.com", "y.com"}
	for _, d := range domains {
		recs[string(domainKey(d))] = Domain{Name: d}
	}
	var addrs []string
	for _, d := range domains {
		for i := range 16 {
			addrs = append(addrs, fmt.Sprintf("l%d@%s", i, d))
		}
	}
	pick := func(i int) string {
		switch k := rng.IntN(12); {
		case k < 7 && i+1 < len(addrs):
			return addrs[i+1+rng.IntN(min(3, len(addrs)-i-1))]
		case k < 8:
			a := mustAddr(t, addrs[rng.IntN(len(addrs))])
			return a.Local + "+t@" + a.Domain
		case k < 9:
			return "ghost@" + domains[rng.IntN(2)]
		case k < 10:
			return fmt.Sprintf("o%d@out.example", rng.IntN(3))
		default:
			return addrs[rng.IntN(len(addrs))]
		}
	}
	forward := func(src string, i int) Forward {
		fw := Forward{Address: src}
		seen := map[string]bool{}
		for range 1 + rng.IntN(2) {
			if tg := pick(i); !seen[tg] && tg != src {
				seen[tg] = true
				fw.Targets = append(fw.Targets, tg)
			}
		}
		if len(fw.Targets) == 0 {
			fw.Targets = []string{"o9@out.example"}
		}
		return fw
	}
	for i, s := range addrs {
		a := mustAddr(t, s)
		hasBox := rng.IntN(5) < 2
		hasFwd := !hasBox || rng.IntN(3) == 0
		if hasFwd {
			fw := forward(s, i)
			fw.KeepCopy = hasBox && rng.IntN(2) == 0
			recs[string(forwardKey(a))] = fw
		}
		if hasBox {
			mb := Mailbox{Address: s, HasForward: hasFwd, Removing: rng.IntN(8) == 0}
			if rng.IntN(5) == 0 {
				mb.QuotaBytes, mb.UsedBytes = 10, 10+int64(rng.IntN(2))
			}
			recs[string(mailboxKey(a))] = mb
		}
	}
	for _, d := range domains {
		if rng.IntN(2) == 0 {
			a := Address{Domain: d}
			recs[string(forwardKey(a))] = forward("@"+d, rng.IntN(len(addrs)))
		}
	}
	for range 3 {
		i := rng.IntN(len(addrs))
		a := mustAddr(t, addrs[i])
		sub := Address{Local: a.Local + "+t", Domain: a.Domain}
		recs[string(forwardKey(sub))] = forward(sub.String(), i)
	}
	putRecords(t, s, recs)
	return addrs
}

// randomRcpt is an address a sender may name: a stored one, another
// case, a sub-address, an unknown one (a catch-all's).
func randomRcpt(rng *rand.Rand, addrs []string) string {
	a := addrs[rng.IntN(len(addrs))]
	switch rng.IntN(5) {
	case 0:
		return "L" + a[1:]
	case 1:
		return a[:len(a)-len("@x.com")] + fmt.Sprintf("+%d", rng.IntN(4)) + a[len(a)-len("@x.com"):]
	case 2:
		return fmt.Sprintf("nobody%d@%s", rng.IntN(2), a[len(a)-len("x.com"):])
	}
	return a
}

func sameLookup(fresh, got Resolution, ferr, gerr error) string {
	if (ferr == nil) != (gerr == nil) || ferr != nil && ferr.Error() != gerr.Error() {
		return fmt.Sprintf("error %v, want %v", gerr, ferr)
	}
	if !reflect.DeepEqual(fresh, got) {
		return fmt.Sprintf("%+v, want %+v", got, fresh)
	}
	return ""
}

// The lookups of one transaction share a memo: over random forward
// graphs (loops, chains past the depth limit, sub-addresses, catch-alls,
// keep-copy forwards, full and being-removed mailboxes), every RCPT,
// whether it confirms or not, gives exactly what a lookup with no memo
// gives (lists and their order, own mailbox, error and its text), also
// when the memo has room for few expansions, and that is what following
// every path in full gives, with the same depth.
func TestExpansionMemoMatchesFreshLookups(t *testing.T) {
	deep, hits := 0, 0
	for seed := uint64(1); seed <= 60; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed*31))
		a := newApplier(t)
		addrs := randomForwardGraph(t, a.s, rng)
		memo := NewExpansionMemo()
		if seed%3 == 0 {
			memo.room = rng.IntN(8) // most expansions used and not kept
		}
		for step := range 60 {
			rcpt := randomRcpt(rng, addrs)
			fresh, ferr := a.s.Resolve(rcpt)
			before := memo.Reads()
			got, gerr := a.s.ResolveIn(rcpt, memo, rng.IntN(4) == 0)
			if why := sameLookup(fresh, got, ferr, gerr); why != "" {
				t.Fatalf("seed %d step %d: %s with the memo: %s", seed, step, rcpt, why)
			}
			if errors.Is(ferr, ErrForwardLoop) {
				deep++
			}
			if len(memo.entries) > 0 && memo.Reads()-before < 4 {
				hits++
			}
			checkNaive(t, a.s, rcpt, fresh, ferr)
		}
	}
	if deep == 0 || hits == 0 {
		t.Fatalf("%d lookups too deep, %d served by the memo: the graphs test too little", deep, hits)
	}
}

// checkNaive compares a lookup with the reference, and its depth.
func checkNaive(t *testing.T, s *State, rcpt string, got Resolution, gerr error) {
	t.Helper()
	a := mustAddr(t, rcpt)
	err := s.view(func(r pebble.Reader) error {
		n := &naiveResolution{r: r, top: a}
		nerr := n.expand(a, 0)
		if why := sameLookup(n.out, got, nerr, gerr); nerr == nil && why != "" || nerr != nil && (gerr == nil || nerr.Error() != gerr.Error()) {
			t.Fatalf("%s: %s (following every path)", rcpt, why)
		}
		if nerr != nil {
			return nil
		}
		res, err := resolve(r, a, false)
		if err != nil {
			t.Fatalf("%s: %v", rcpt, err)
		}
		if res.deepest != n.deepest {
			t.Fatalf("%s: %d levels deep, following every path %d", rcpt, res.deepest, n.deepest)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// 1,000 sub-addresses of a list of 100 lists of 10 in one transaction:
// the list is expanded by the first; each later one looks up its own
// spelling and the base's records, and takes the kept expansion.
func TestExpansionMemoSubaddressRcpts(t *testing.T) {
	s := fanOutDirectory(t, 100, 10)
	memo := NewExpansionMemo()
	first := 0
	for i := range 1000 {
		r, err := s.ResolveIn(fmt.Sprintf("all+%d@fan.example", i), memo, false)
		if err != nil || len(r.Mailboxes) != 1000 {
			t.Fatalf("all+%d: %d mailboxes, %v", i, len(r.Mailboxes), err)
		}
		if i == 0 {
			first = memo.Reads()
		}
	}
	if per := (memo.Reads() - first) / 999; per > 2 {
		t.Fatalf("%d exact lookups for the first RCPT, then %d each, want at most 2", first, per)
	}
}

// A forward expanded for a short chain and then reached deeper, through
// a chain that puts its mailbox past the depth limit, gives the depth
// error a fresh lookup gives; and a forward reached under two spellings
// in one lookup (a sub-address and another case) reads its members once.
func TestExpansionMemoDeeperAndSpellings(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "x.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "box@x.com"}}})
	chain := func(i int) string { return fmt.Sprintf("c%d@x.com", i) }
	a.must(&ForwardAdd{Address: chain(maxForwardDepth), Targets: []string{"box@x.com"}})
	for i := maxForwardDepth - 1; i >= 1; i-- {
		a.must(&ForwardAdd{Address: chain(i), Targets: []string{chain(i + 1)}})
	}
	// c0 -> c1 would be refused (checkChainDepth): stored as an older
	// release could have.
	putRecords(t, a.s, map[string]any{string(forwardKey(mustAddr(t, chain(0)))): Forward{Address: chain(0), Targets: []string{chain(1)}}})
	_, want := a.s.Resolve(chain(0))
	if !errors.Is(want, ErrForwardLoop) {
		t.Fatalf("c0: %v, want nested too deep", want)
	}
	memo := NewExpansionMemo()
	for _, rcpt := range []string{chain(5), chain(1), chain(0)} {
		_, err := a.s.ResolveIn(rcpt, memo, false)
		if rcpt == chain(0) && (err == nil || err.Error() != want.Error()) || rcpt != chain(0) && err != nil {
			t.Fatalf("%s with the memo: %v (without: %v)", rcpt, err, want)
		}
	}

	var members []string
	var boxes []NewMailbox
	for i := range 50 {
		members = append(members, fmt.Sprintf("m%d@x.com", i))
		boxes = append(boxes, NewMailbox{Address: members[i]})
	}
	a.must(&MailboxAdd{Mailboxes: boxes})
	a.must(&ForwardAdd{Address: "team@x.com", Targets: members})
	a.must(&ForwardAdd{Address: "both@x.com", Targets: []string{"team+a@x.com", "Team@x.com", "team+b@x.com"}})
	var res *resolution
	err := a.s.view(func(r pebble.Reader) (err error) {
		res, err = resolve(r, mustAddr(t, "both@x.com"), false)
		return err
	})
	if err != nil || !reflect.DeepEqual(res.Mailboxes, members) {
		t.Fatalf("%v, %v", res, err)
	}
	if res.reads > len(members)+10 {
		t.Fatalf("%d exact lookups for a list of %d reached under three spellings", res.reads, len(members))
	}
}

// Lists that share lists: 100 forwards each naming the same 100
// forwards, three levels of them above 100 lists of 100 mailboxes. A
// lookup follows each forward once and adds each mailbox once per
// level it is met on, as it did before expansions were kept: keeping
// the expansion of every forward below the one a lookup lands on made
// each copy and merge its targets' 10,000 addresses, 100 times per
// level (7.5 s and 340 MB of garbage for one RCPT at three levels, ten
// times that per level more, without a read more to bound it).
func TestExpansionOfSharedListsStaysLinear(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "d.example"})
	var level []string
	for l := range 100 {
		add := &MailboxAdd{}
		fw := Forward{Address: fmt.Sprintf("s%d@d.example", l)}
		for i := range 100 {
			m := fmt.Sprintf("u%d.%d@d.example", l, i)
			add.Mailboxes = append(add.Mailboxes, NewMailbox{Address: m})
			fw.Targets = append(fw.Targets, m)
		}
		a.must(add)
		a.must(&ForwardAdd{Address: fw.Address, Targets: fw.Targets})
		level = append(level, fw.Address)
	}
	// Stored as records: ForwardAdd's own checks of such a graph take
	// minutes (they follow every path).
	recs := map[string]any{}
	for n := 1; n <= 3; n++ {
		var next []string
		for i := range 100 {
			addr := fmt.Sprintf("a%d.%d@d.example", n, i)
			recs[string(forwardKey(mustAddr(t, addr)))] = Forward{Address: addr, Targets: level}
			next = append(next, addr)
		}
		level = next
	}
	putRecords(t, a.s, recs)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	r, err := a.s.ResolveIn("a3.0@d.example", NewExpansionMemo(), false)
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	if err != nil || len(r.Mailboxes) != 10000 {
		t.Fatalf("%d mailboxes, %v", len(r.Mailboxes), err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Fatalf("one lookup allocated %d MB in %v, want under 32 (it reaches 10,000 mailboxes)", alloc>>20, took)
	}
}
