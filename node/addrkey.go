package node

import (
	"strings"

	"golang.org/x/text/unicode/norm"

	"powermail/fsm"
)

// AccountKey is the one spelling of a login name that every spelling of
// the same account shares (quoting, case, a trailing dot, canonically
// equivalent forms of its characters), so that a per-account limit
// cannot be dodged by respelling; a name that is no address is
// lower-cased as it is. The forms are put in NFC (RFC 5198 §2) because
// from command encoding 13 a login finds a mailbox stored in NFC by any
// of them (fsm.State.Mailbox). Two mailboxes stored before 13 under two
// forms of one name share a key: their limits are stricter, never
// looser, and a login is still of the name given.
func AccountKey(user string) string {
	if a, err := fsm.ParseAddress(strings.TrimSpace(user)); err == nil {
		k := a.Key()
		if isASCII(k) {
			return k
		}
		return norm.NFC.String(k)
	}
	return strings.ToLower(user)
}

// OwnAddress reports whether addr is mailbox itself, or it with a
// +detail, compared in the directory's canonical form with only ASCII
// letters folded: a lookalike that Unicode case folding would equate
// (the Kelvin sign for K) is not the same sender. A domain given in
// U-labels (SMTPUTF8, RFC 6531) is compared by its A-labels, as the
// directory holds it and as Resolve and SendAsAlias read it. The +detail form may
// still be another account's (a mailbox or forward of that name): a
// sender check also asks the directory (frontend).
func OwnAddress(addr, mailbox string) bool {
	al, ml, ok := addressPair(addr, mailbox)
	return ok && (al == ml || strings.HasPrefix(al, ml+"+"))
}

// SameAddress reports whether addr is mailbox itself, as OwnAddress
// compares them.
func SameAddress(addr, mailbox string) bool {
	al, ml, ok := addressPair(addr, mailbox)
	return ok && al == ml
}

// addressPair gives the ASCII-folded local parts of two addresses of one
// domain, each domain in its A-labels.
func addressPair(addr, mailbox string) (string, string, bool) {
	a, err := fsm.ParseAddress(asciiAddress(addr))
	if err != nil {
		return "", "", false
	}
	m, err := fsm.ParseAddress(asciiAddress(mailbox))
	if err != nil || a.Domain != m.Domain {
		return "", "", false
	}
	return asciiLower(a.Local), asciiLower(m.Local), true
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
