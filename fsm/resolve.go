package fsm

import (
	"github.com/cockroachdb/pebble/v2"
)

// Resolution is where mail for one address goes.
type Resolution struct {
	// Mailboxes are the local mailboxes (canonical addresses) to deliver to.
	Mailboxes []string `json:"mailboxes"`
	// External are addresses outside the hosted domains, reached through
	// forwards.
	External []string `json:"external,omitempty"`
}

type resolution struct {
	Resolution
	reaches map[string]bool // every address key the expansion passed
	seenMb  map[string]bool
	seenExt map[string]bool
}

func newResolution() *resolution {
	return &resolution{reaches: map[string]bool{}, seenMb: map[string]bool{}, seenExt: map[string]bool{}}
}

// resolve expands a in a hosted domain: exact forward, exact mailbox,
// sub-address base (RFC 5233), then the domain's catch-all.
func resolve(r pebble.Reader, a Address, depth int, _ map[string]bool) (*resolution, error) {
	res := newResolution()
	if err := res.expand(r, a, depth); err != nil {
		return nil, err
	}
	return res, nil
}

func (res *resolution) expand(r pebble.Reader, a Address, depth int) error {
	if depth > maxForwardDepth {
		return errorf(ErrForwardLoop, "forwarding of %s is nested more than %d deep", a, maxForwardDepth)
	}
	if res.reaches[a.Key()] {
		return nil
	}
	found, err := res.expandExact(r, a, depth)
	if err != nil || found {
		return err
	}
	if base := subaddressBase(a.Local); base != "" {
		found, err = res.expandExact(r, Address{Local: base, Domain: a.Domain}, depth)
		if err != nil || found {
			return err
		}
	}
	found, err = res.expandExact(r, Address{Domain: a.Domain}, depth)
	if err != nil {
		return err
	}
	if !found {
		return errorf(ErrNotFound, "no mailbox %s", a)
	}
	return nil
}

// expandExact follows the forward or mailbox stored under exactly a.
func (res *resolution) expandExact(r pebble.Reader, a Address, depth int) (bool, error) {
	var fw Forward
	ok, err := getJSON(r, forwardKey(a), &fw)
	if err != nil {
		return false, err
	}
	if ok {
		res.reaches[a.Key()] = true
		for _, t := range fw.Targets {
			if err := res.target(r, t, depth+1); err != nil {
				return false, err
			}
		}
		if !fw.KeepCopy {
			return true, nil
		}
	}
	if a.Local == "" {
		return ok, nil
	}
	var mb Mailbox
	found, err := getJSON(r, mailboxKey(a), &mb)
	if err != nil || !found {
		return ok, err
	}
	res.reaches[a.Key()] = true
	if !res.seenMb[a.Key()] {
		res.seenMb[a.Key()] = true
		res.Mailboxes = append(res.Mailboxes, mb.Address)
	}
	return true, nil
}

func (res *resolution) target(r pebble.Reader, t string, depth int) error {
	a, err := ParseAddress(t)
	if err != nil {
		return err
	}
	local, err := hasKey(r, domainKey(a.Domain))
	if err != nil {
		return err
	}
	if local {
		return res.expand(r, a, depth)
	}
	if !res.seenExt[a.Key()] {
		res.seenExt[a.Key()] = true
		res.External = append(res.External, a.String())
	}
	return nil
}

func hasKey(r pebble.Reader, key []byte) (bool, error) {
	_, closer, err := r.Get(key)
	if err == pebble.ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}
