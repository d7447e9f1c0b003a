package fsm

import (
	"github.com/cockroachdb/pebble/v2"
)

// SenderAlias returns the forward that makes addr an alias, for a
// submission server deciding whether a user may send as addr: the
// forward stored under addr, or, when addr is a sub-address (RFC 5233)
// with no mailbox or forward of its own, the one under its base. It
// returns ErrNotFound when the address it looks at is a mailbox (an
// account of its own, whatever forward it also has) or nothing. A
// catch-all is never an alias: addr must have a local part (ErrInvalid
// otherwise), and the domain's catch-all is never read. It reads the
// local state once, at most four keys.
func (s *State) SenderAlias(addr string) (Forward, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return Forward{}, err
	}
	var out Forward
	err = s.view(func(r pebble.Reader) error {
		fw, entry, err := exactAlias(r, a)
		if err == nil && !entry {
			if base := subaddressBase(a.Local); base != "" {
				fw, entry, err = exactAlias(r, Address{Local: base, Domain: a.Domain})
			}
		}
		switch {
		case err != nil:
			return err
		case fw == nil:
			return errorf(ErrNotFound, "%s is no alias", a)
		}
		out = *fw
		return nil
	})
	return out, err
}

// exactAlias reads what is stored under exactly a: entry is whether a
// has a mailbox or a forward, and fw its forward when it has no mailbox.
func exactAlias(r pebble.Reader, a Address) (fw *Forward, entry bool, err error) {
	if mb, err := hasKey(r, mailboxKey(a)); err != nil || mb {
		return nil, mb, err
	}
	var f Forward
	ok, err := getJSON(r, forwardKey(a), &f)
	if err != nil || !ok {
		return nil, false, err
	}
	return &f, true, nil
}
