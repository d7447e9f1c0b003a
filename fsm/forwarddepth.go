package fsm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// checkChainDepth refuses, from the gated encoding on, a forward at src
// that would make a chain of forwards through src deeper than delivery
// follows (maxForwardDepth). The first rule (checkTarget) measured only
// below the forward's targets, from 0, so it let in a forward whose
// address ended up at level 11, and a forward that joined two chains
// each within the limit; delivery then refused the top of the chain as
// nested too deep (550 at RCPT).
//
// The depth of a chain through src is the levels above src (the longest
// path of forwards whose targets' lookups land on src, found through the
// target index) plus the levels below it: one for its targets, and the
// deepest a delivery to one of them goes (resolve, as delivery counts).
// Levels above are counted breadth first, one level of parents at a
// time, and the walk stops at the first level past what the levels
// below leave: its cost is the forwards above src, no more than
// maxForwardDepth levels of them, each a prefix scan of the index.
func checkChainDepth(tx *txn, src Address, targets []string) error {
	below, err := levelsBelow(tx, src, targets)
	if err != nil {
		return err
	}
	if below > maxForwardDepth {
		return errorf(ErrForwardLoop, "forward %s: its targets go %d levels deep; delivery follows %d", src, below, maxForwardDepth)
	}
	idx, err := newIndexReader(tx.b)
	if err != nil {
		return err
	}
	defer idx.close()
	parents := map[string][]string{}
	level := []string{addrPart(src)}
	for above := 1; ; above++ {
		next := map[string]bool{}
		for _, x := range level {
			ps, ok := parents[x]
			if !ok {
				if ps, err = forwardsLandingOn(tx, idx, x); err != nil {
					return err
				}
				parents[x] = ps
			}
			for _, p := range ps {
				next[p] = true
			}
		}
		if len(next) == 0 {
			return nil
		}
		level = sortedKeys(next)
		if above+below > maxForwardDepth {
			domain, local, _ := strings.Cut(level[0], "\x00")
			return errorf(ErrForwardLoop, "forward %s: the chain from forward %s@%s through it would be %d levels deep; delivery follows %d", src, local, domain, above+below, maxForwardDepth)
		}
	}
}

// levelsBelow is how many levels a delivery to src goes below it once
// its forward has targets: one more than the deepest local target's
// expansion, or 0 when every target is outside the hosted domains.
func levelsBelow(tx *txn, src Address, targets []string) (int, error) {
	below := 0
	for _, s := range targets {
		t, err := ParseAddress(s)
		if err != nil {
			return 0, err
		}
		local, err := tx.has(domainKey(t.Domain))
		if err != nil {
			return 0, err
		}
		if !local {
			continue // not expanded: no level below
		}
		res, err := resolve(tx.b, t, false)
		var be *Error
		if errors.As(err, &be) {
			return 0, errorf(ErrForwardLoop, "forward %s: target %s: %s", src, t, err.Error())
		}
		if err != nil {
			return 0, fmt.Errorf("forward %s: target %s: %w", src, t, err)
		}
		below = max(below, 1+res.deepest)
	}
	return below, nil
}

// forwardsLandingOn returns the address parts of the forwards with a
// target whose lookup lands on x (an address part, "domain\x00local"):
// the target is x, or a sub-address of x that has no record of its own,
// or, for a catch-all x, any address of its domain whose lookup finds
// neither its own record nor its sub-address base's (expandOnce).
func forwardsLandingOn(tx *txn, idx *indexReader, x string) ([]string, error) {
	return landingOn(tx.b, idx, x)
}

// landingOn is forwardsLandingOn on any reader (a query's too).
func landingOn(r pebble.Reader, idx *indexReader, x string) ([]string, error) {
	domain, local, _ := strings.Cut(x, "\x00")
	var out []string
	if local != "" {
		_, srcs, err := idx.sources([]byte(targetIndexPrefix + x + "\x00"))
		if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
		if strings.IndexByte(local, '+') >= 0 {
			return out, nil // a sub-address is no address's base
		}
	}
	through, err := landingThrough(r, idx, domain, local)
	if err != nil {
		return nil, err
	}
	return append(out, through...), nil
}

// landingThrough is the part of landingOn that falls through: the
// forwards with a target that is a sub-address of domain's local (or,
// for local "", any address of domain) and lands there because no
// record of its own catches it.
func landingThrough(r pebble.Reader, idx *indexReader, domain, local string) ([]string, error) {
	scan := targetIndexPrefix + domain + "\x00" + local
	if local != "" {
		scan += "+"
	}
	tls, srcs, err := idx.sources([]byte(scan))
	if err != nil {
		return nil, err
	}
	var out []string
	for i, tl := range tls {
		lands, err := fallsThrough(r, domain, tl, local == "")
		if err != nil {
			return nil, err
		}
		if lands {
			out = append(out, srcs[i])
		}
	}
	return out, nil
}

// fallsThrough reports whether a lookup of tl@domain finds nothing under
// tl itself and so goes on to its sub-address base, and, with catchAll,
// finds nothing there either and goes on to the domain's catch-all.
func fallsThrough(r pebble.Reader, domain, tl string, catchAll bool) (bool, error) {
	lookups := []string{tl}
	if base := subaddressBase(tl); catchAll && base != "" {
		lookups = append(lookups, base)
	}
	for _, l := range lookups {
		// mailboxKey and forwardKey of the address part, whose local
		// is folded already.
		for _, key := range []string{"u\x00", "f\x00"} {
			found, err := hasKey(r, []byte(key+domain+"\x00"+l))
			if err != nil || found {
				return false, err
			}
		}
	}
	return true, nil
}
