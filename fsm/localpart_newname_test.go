package fsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// newNameByLookup is newName as it was before valid NFC names skipped
// the exact-name lookups: the reference that the shortcut must match.
func newNameByLookup(tx *txn, raw string, a Address) (Address, error) {
	on, err := gated13(tx)
	if err != nil || !on {
		return a, err
	}
	if err := checkNewDomain(rawDomain(raw)); err != nil {
		return a, err
	}
	if a.Local == "" {
		return a, nil
	}
	if found, err := namedExactly(tx, a); err != nil || found {
		return a, err
	}
	if err := checkLocalText(a.Local); err != nil {
		return a, errorf(ErrInvalid, "address %q: %s", a.String(), err.Error())
	}
	return nfcAddress(a)
}

// sameOutcome describes how two newName outcomes differ, or "".
func sameOutcome(a1 Address, e1 error, a2 Address, e2 error) string {
	if a1 != a2 {
		return fmt.Sprintf("address %+q, want %+q", a1.String(), a2.String())
	}
	if (e1 == nil) != (e2 == nil) || e1 != nil && e1.Error() != e2.Error() {
		return fmt.Sprintf("error %v, want %v", e1, e2)
	}
	for _, s := range []error{ErrInvalid, ErrExists, ErrNotFound} {
		if errors.Is(e1, s) != errors.Is(e2, s) {
			return fmt.Sprintf("error %v is %v: %v, want %v", e1, s, errors.Is(e1, s), errors.Is(e2, s))
		}
	}
	return ""
}

// A new name valid and in NFC skips the exact-name lookups: newName
// gives every class of name the same address, error and error text as
// the lookups did, below 13, at 13 and at the newest encoding, for
// names stored before 13 (which the checks would refuse now) as for
// new ones, so nodes of either release apply a command alike.
func TestNewNameShortcutMatchesTheLookups(t *testing.T) {
	stored := []string{ // names taken below 13, as every release did
		"alice", "j\u00f6rg", nfdE, "a\u200bb", "a\u00a0b", "x\xffy", "\u0378", "s" + nfdE + "\u200b",
		"a\ufffdb",
	}
	fresh := []string{ // never stored
		"bob", "first.last", "tag+sub", "Mixed.Case", "d\u00e9j\u00e0.vu", "\u7528\u6237", "\U0001F600",
		"n" + nfdE, "\u212b", "e\u0301\u0301", "\u1e9b\u0323", "a\u0300\u0316", "\u0958",
		"z\xffy", "\xc3", "\xed\xa0\x80", "a\u200db", "b\u0378", "c\ufdd0", "d\U0010fffe", "e\u0085", "f\ufffd",
		"\u00e9" + nfdE,
	}
	for _, enc := range []int{EncodingJSON12, EncodingJSON13, EncodingJSON14, NewestEncoding} {
		a := localFixture(t, EncodingJSON12)
		for _, l := range stored {
			a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: l + "@example.com"}}})
			a.must(&ForwardAdd{Address: "fw" + l + "@example.com", Targets: []string{"t@remote.example"}})
		}
		a.raiseTo(enc)
		tx := &txn{b: a.s.db.NewIndexedBatch()}
		var raws []string
		for _, l := range append(append([]string{}, stored...), fresh...) {
			raws = append(raws, l+"@example.com", "fw"+l+"@example.com", l+"@EXAMPLE.com", l+"@k\u212aelvin.example", l+"@nosuch.example")
		}
		raws = append(raws, "@example.com", "@k\u212aelvin.example", "@nosuch.example")
		checked := 0
		for _, raw := range raws {
			for _, forward := range []bool{false, true} {
				parse := ParseAddress
				if forward {
					parse = ParseForwardSource
				}
				addr, err := parse(raw)
				if err != nil {
					continue // refused before newName, by either release
				}
				got, gerr := newName(tx, raw, addr)
				want, werr := newNameByLookup(tx, raw, addr)
				if diff := sameOutcome(got, gerr, want, werr); diff != "" {
					t.Errorf("encoding %d, %+q (forward %v): %s", enc, raw, forward, diff)
				}
				checked++
			}
		}
		if checked < len(raws) {
			t.Fatalf("encoding %d: only %d of %d names parsed", enc, checked, 2*len(raws))
		}
		// The classes reach newName: at 13 and on, a name stored before
		// that the checks refuse is taken, and a new one is refused.
		for raw, refused := range map[string]string{"a\u200bb@example.com": "", "x\xffy@example.com": "", "z\xffy@example.com": "not valid UTF-8", "b\u0378@example.com": "unassigned"} {
			addr, err := ParseAddress(raw)
			if err != nil {
				t.Fatalf("%+q: %v", raw, err)
			}
			_, err = newName(tx, raw, addr)
			if enc < EncodingJSON13 || refused == "" {
				if err != nil {
					t.Errorf("encoding %d, %+q: %v, want it taken", enc, raw, err)
				}
			} else if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), refused) {
				t.Errorf("encoding %d, %+q: %v, want ErrInvalid naming %q", enc, raw, err, refused)
			}
		}
		tx.b.Close()
	}
}
