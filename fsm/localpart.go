package fsm

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Local parts of new names, from command encoding 13 (gatedEncoding13).
//
// RFC 6531 §3.3 lets a local part hold any UTF-8 beyond ASCII, and
// every release took every byte from 0x80 up as atext. A name is read
// by people, in listings and address books, so from 13 a new mailbox
// or forward name must be text that shows what it is:
//
//   - valid UTF-8, and no U+FFFD, which is what JSON (the admin API,
//     the raft entry) makes of each byte that is not UTF-8: two
//     different bad inputs would be one name;
//   - no control (Cc), format (Cf: zero-width space and joiners, bidi
//     controls, the soft hyphen), surrogate or separator (Zs, Zl, Zp)
//     character, and no code point that is unassigned (Cn, the
//     non-characters among them) in localUnicodeVersion: "a\u200bb@"
//     looks like "ab@" and would be another mailbox;
//   - in Normalization Form C (RFC 6530 §10.1, RFC 5198 §2): a name
//     given in another form is stored in NFC, so "é" typed precomposed
//     or as "e" and a combining accent is one mailbox.
//
// The refused code points come from a table pinned in the repository
// (localtable.go, written by go run ./fsm/internal/localgen), not the
// toolchain's unicode package, so that nodes built with different Go
// releases refuse the same names. NFC comes from golang.org/x/text's
// tables (norm.Version); since only code points assigned in
// localUnicodeVersion pass, and Unicode's normalization stability
// policy keeps the NFC of such text unchanged in every later version,
// any x/text whose Unicode version is at least localUnicodeVersion
// computes the same form (TestLocalNFCTablesNotOlder).

// checkLocalText reports why l cannot name a new mailbox or forward, or
// nil.
func checkLocalText(l string) error {
	for i, r := range l {
		if r < utf8.RuneSelf {
			continue // ASCII is judged by the atext rule (normalizeLocal)
		}
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(l[i:]); n == 1 {
				return fmt.Errorf("local part is not valid UTF-8 (byte 0x%02X at %d)", l[i], i)
			}
			return fmt.Errorf("local part holds U+FFFD, the replacement character: input that was not UTF-8")
		}
		if why := refusedRune(r); why != "" {
			return fmt.Errorf("local part holds U+%04X, %s", r, why)
		}
	}
	return nil
}

// refusedRune names what r is when a local part may not hold it, or "".
func refusedRune(r rune) string {
	if r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE {
		return "a non-character"
	}
	i := sort.Search(len(localRefused), func(i int) bool { return localRefused[i][1] >= r })
	if i == len(localRefused) || localRefused[i][0] > r {
		return ""
	}
	switch localRefused[i][2] {
	case 'c':
		return "a control character"
	case 'f':
		return "an invisible format character"
	case 'z':
		return "a space or separator"
	case 's':
		return "a surrogate"
	default:
		return "unassigned in Unicode " + localUnicodeVersion
	}
}

// nfcLocal gives l in Normalization Form C. ASCII is its own NFC.
func nfcLocal(l string) string {
	for i := 0; i < len(l); i++ {
		if l[i] >= utf8.RuneSelf {
			return norm.NFC.String(l)
		}
	}
	return l
}

// checkNewDomain refuses a domain typed with non-ASCII characters: the
// case folding maps some to ASCII letters (the Kelvin sign K to "k",
// U+0130 to "i"), and NormalizeDomain then took a lookalike for the
// domain itself. An internationalised domain is given by its A-labels.
func checkNewDomain(raw string) error {
	for i := 0; i < len(raw); i++ {
		if raw[i] >= utf8.RuneSelf {
			return errorf(ErrInvalid, "domain %q is not ASCII: give an internationalised domain in its xn-- form", strings.TrimSpace(raw))
		}
	}
	return nil
}

// rawDomain is the domain part of an address as given.
func rawDomain(addr string) string {
	return addr[strings.LastIndexByte(addr, '@')+1:]
}

// newName admits a as the name of a new mailbox (mailbox) or forward,
// parsed from raw, under the rules of gatedEncoding13: what exists
// under its exact key (a mailbox or a forward) is taken as it is, so
// that every name stored before stays addressable; anything else is
// checked (checkLocalText, checkNewDomain) and its local part put in
// NFC. Below 13 a is returned unchanged.
func newName(tx *txn, raw string, a Address) (Address, error) {
	on, err := gated13(tx)
	if err != nil || !on {
		return a, err
	}
	if err := checkNewDomain(rawDomain(raw)); err != nil {
		return a, err
	}
	if a.Local == "" {
		return a, nil // a catch-all
	}
	if checkLocalText(a.Local) == nil && nfcLocal(a.Local) == a.Local {
		// Already valid and in NFC: found or not, the name is a as it
		// is, so the two lookups below (misses, for a new name, which
		// cost the most in a large store) would change nothing.
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

// namedExactly reports whether a mailbox or a forward is stored under
// exactly a's key.
func namedExactly(tx *txn, a Address) (bool, error) {
	if ok, err := tx.has(mailboxKey(a)); err != nil || ok {
		return ok, err
	}
	return tx.has(forwardKey(a))
}

// nfcAddress gives a with its local part in NFC, checked again as a
// dot-atom: composing can change its length. A local part the table
// refuses (checkLocalText) is given as it is: its NFC is stable only
// for code points assigned in localUnicodeVersion (one unassigned there
// may get a combining class later, and x/text of another version would
// compose it otherwise), and no name stored in NFC from 13 holds one.
// So apply (a forward's target) and lookups (Resolve, Mailbox) of every
// node compute the same form whatever x/text it was built with.
func nfcAddress(a Address) (Address, error) {
	l := nfcLocal(a.Local)
	if l == a.Local || checkLocalText(a.Local) != nil {
		return a, nil
	}
	l, err := normalizeLocal(l)
	if err != nil {
		return a, errorf(ErrInvalid, "address %q: %s", a.String(), err.Error())
	}
	return Address{Local: l, Domain: a.Domain}, nil
}
