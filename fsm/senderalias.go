package fsm

import (
	"github.com/cockroachdb/pebble/v2"
)

// SenderForwards returns the forwards that make addr an alias, for a
// submission server deciding whether a user may send as addr; the user
// may when every one of them names it. They are the forward stored
// under addr, and, when addr is a sub-address (RFC 5233), the one under
// its base: a sub-address of someone else's alias is that alias's
// owner's, whatever forward it has of its own. It returns ErrNotFound
// when addr or its base is a mailbox (an account of its own, whatever
// forward it also has) or when neither has a forward. A catch-all is
// never an alias: addr must have a local part (ErrInvalid otherwise),
// and the domain's catch-all is never read. From command encoding 13
// each name is read as RCPT reads it, its NFC when nothing is stored
// under its spelling (spelledAlias). It reads the local state once, at
// most eight keys.
func (s *State) SenderForwards(addr string) ([]Forward, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	var out []Forward
	err = s.view(func(r pebble.Reader) error {
		names := []Address{a}
		if base := subaddressBase(a.Local); base != "" {
			names = append(names, Address{Local: base, Domain: a.Domain})
		}
		nfc := false
		if nfcLocal(a.Local) != a.Local {
			if nfc, err = s.lookupsNFC(r); err != nil {
				return err
			}
		}
		for _, n := range names {
			fw, mailbox, err := spelledAlias(r, n, nfc)
			switch {
			case err != nil:
				return err
			case mailbox:
				return errorf(ErrNotFound, "%s is a mailbox", n)
			case fw != nil:
				out = append(out, *fw)
			}
		}
		if len(out) == 0 {
			return errorf(ErrNotFound, "%s has no forward", a)
		}
		return nil
	})
	return out, err
}

// spelledAlias reads what RCPT of a reaches first (resolution's
// expandSpelled): what is stored under its spelling and, from command
// encoding 13 (nfc) when nothing is, under its NFC. An alias is judged
// on the account its mail goes to: "e\u0301+tag@" is the NFC mailbox
// "\u00e9+tag@"'s, not the alias "e\u0301@"'s.
func spelledAlias(r pebble.Reader, a Address, nfc bool) (*Forward, bool, error) {
	fw, mailbox, err := exactAlias(r, a)
	if err != nil || fw != nil || mailbox || !nfc {
		return fw, mailbox, err
	}
	n, err := nfcAddress(a)
	if err != nil || n == a {
		return nil, false, nil
	}
	return exactAlias(r, n)
}

// exactAlias reads what is stored under exactly a: whether it is a
// mailbox, else its forward (nil when it has none).
func exactAlias(r pebble.Reader, a Address) (fw *Forward, mailbox bool, err error) {
	if mailbox, err = hasKey(r, mailboxKey(a)); err != nil || mailbox {
		return nil, mailbox, err
	}
	var f Forward
	ok, err := getJSON(r, forwardKey(a), &f)
	if err != nil || !ok {
		return nil, false, err
	}
	return &f, false, nil
}
