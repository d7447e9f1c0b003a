package fsm

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
)

// Lists of lists that share members reach one address on many paths. A
// delivery lookup expands each address once: 6 levels of 6 lists, each
// naming all 6 of the next, took one exact lookup per path (about
// 56,000) and now take a few per address.
func TestResolveExpandsASharedMemberOnce(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "x.com"})
	const width, levels = 6, 7
	name := func(l, i int) string {
		if l == levels {
			return fmt.Sprintf("m%d@x.com", i)
		}
		return fmt.Sprintf("l%d-%d@x.com", l, i)
	}
	var boxes []NewMailbox
	for i := range width {
		boxes = append(boxes, NewMailbox{Address: name(levels, i)})
	}
	a.must(&MailboxAdd{Mailboxes: boxes})
	for l := levels - 1; l >= 1; l-- {
		for i := range width {
			var targets []string
			for j := range width {
				targets = append(targets, name(l+1, j))
			}
			a.must(&ForwardAdd{Address: name(l, i), Targets: targets})
		}
	}
	var res *resolution
	err := a.s.view(func(r pebble.Reader) (err error) {
		res, err = resolve(r, mustAddr(t, name(1, 0)), false)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range width {
		want = append(want, name(levels, i))
	}
	if !slices.Equal(res.Mailboxes, want) {
		t.Fatalf("mailboxes %v, want %v", res.Mailboxes, want)
	}
	if limit := 4 * width * levels; res.reads > limit {
		t.Fatalf("%d exact lookups for %d addresses, want at most %d", res.reads, width*levels, limit)
	}
}

// An address reached first on a short path and again on a path that
// takes its chain past the depth limit is refused, as when each path
// expanded it in full.
func TestResolveSharedMemberDeeperPassesTheLimit(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "x.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "m@x.com"}, {Address: "n@x.com"}}})
	chain := func(prefix string, n int, end string) string {
		next := end
		for i := n - 1; i >= 0; i-- {
			src := fmt.Sprintf("%s%d@x.com", prefix, i)
			a.must(&ForwardAdd{Address: src, Targets: []string{next}})
			next = src
		}
		return next
	}
	y := chain("c", 5, "m@x.com") // y's chain is 5 levels deep
	p := chain("p", 6, "n@x.com") // 6 levels before it, once it ends at y
	a.must(&ForwardAdd{Address: "short@x.com", Targets: []string{y, p}})
	a.must(&ForwardAdd{Address: "long@x.com", Targets: []string{p, y}})
	// Each forward was checked alone; together they nest too deep.
	if r := a.applyAs(&ForwardAdd{Address: "p5@x.com", Targets: []string{y}, Replace: true}, NewestEncoding); r.Err != nil {
		t.Fatal(r.Err)
	}
	for _, top := range []string{"short@x.com", "long@x.com"} {
		if got, err := a.s.Resolve(top); !errors.Is(err, ErrForwardLoop) {
			t.Errorf("%s: %v, %v; want ErrForwardLoop", top, got, err)
		}
	}
	if got, err := a.s.Resolve(y); err != nil || !slices.Equal(got.Mailboxes, []string{"m@x.com"}) {
		t.Errorf("%s: %v, %v", y, got, err)
	}
}
