package fsm

import (
	"errors"
	"testing"
)

// A forward back to a target that reached the new forward's address only
// through a fallback (the domain's catch-all, or the sub-address base)
// loops once it exists: delivery takes the new forward at the lookup
// that found nothing before. With Fallbacks (encoding 7) the loop check
// counts those lookups and refuses it; without, the first rule, kept for
// entries of older releases, lets it in.
func TestForwardLoopThroughFallbacks(t *testing.T) {
	a := newApplier(t)
	a.must(&DomainAdd{Name: "x.com"})
	a.must(&DomainAdd{Name: "y.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "c@y.com"}, {Address: "b@y.com"}, {Address: "m@x.com"}}})
	a.must(&ForwardAdd{Address: "@y.com", Targets: []string{"c@y.com"}})
	a.must(&ForwardAdd{Address: "a@x.com", Targets: []string{"ghost@y.com"}})    // caught by @y.com
	a.must(&ForwardAdd{Address: "s@x.com", Targets: []string{"b+tag@y.com"}})    // sub-address of b
	a.must(&ForwardAdd{Address: "u@x.com", Targets: []string{"sales+eu@y.com"}}) // base unknown: @y.com
	loops := []*ForwardAdd{
		{Address: "ghost@y.com", Targets: []string{"a@x.com"}},
		{Address: "b+tag@y.com", Targets: []string{"s@x.com"}},
		{Address: "sales@y.com", Targets: []string{"u@x.com"}},
	}
	for _, c := range loops {
		c.Fallbacks = true
		if r := a.applyAs(c, NewestEncoding); !errors.Is(r.Err, ErrForwardLoop) {
			t.Errorf("%s -> %v with fallbacks: %v, want ErrForwardLoop", c.Address, c.Targets, r.Err)
		}
	}
	for _, addr := range []string{"a@x.com", "s@x.com", "u@x.com"} {
		if _, err := a.s.Resolve(addr); err != nil {
			t.Errorf("%s after the refused loops: %v", addr, err)
		}
	}

	// Chains that do not come back are still taken.
	ok := &ForwardAdd{Address: "b+list@y.com", Targets: []string{"b@y.com", "m@x.com"}, Fallbacks: true}
	if r := a.applyAs(ok, NewestEncoding); r.Err != nil {
		t.Fatalf("a forward at a sub-address to its base: %v", r.Err)
	}
	ok = &ForwardAdd{Address: "top@x.com", Targets: []string{"a@x.com", "s@x.com"}, Fallbacks: true}
	if r := a.applyAs(ok, NewestEncoding); r.Err != nil {
		t.Fatalf("a forward to two fallback chains: %v", r.Err)
	}

	// The first rule, which entries written before encoding 7 are
	// applied by, on every replica alike.
	old := &ForwardAdd{Address: "ghost@y.com", Targets: []string{"a@x.com"}}
	if r := a.applyAs(old, EncodingJSON6); r.Err != nil {
		t.Fatalf("the first rule refused %v: %v", old, r.Err)
	}
	if _, err := a.s.Resolve("a@x.com"); !errors.Is(err, ErrForwardLoop) {
		t.Fatalf("the loop the first rule let in resolves: %v", err)
	}
}

func TestForwardFallbacksNeedsEncoding7(t *testing.T) {
	c := &ForwardAdd{Address: "a@x.com", Targets: []string{"b@y.com"}, Fallbacks: true}
	if _, err := EncodeAs(c, EncodingJSON6); !errors.Is(err, ErrEncoding) {
		t.Fatalf("fallbacks at encoding 6: %v, want ErrEncoding", err)
	}
	if data, err := EncodeAs(c, EncodingJSON7); err != nil || data[1] != EncodingJSON7 {
		t.Fatalf("fallbacks at encoding 7: %v", err)
	}
}
