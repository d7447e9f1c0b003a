package node

import (
	"strings"

	"powermail/fsm"
)

// AccountKey is the one spelling of a login name that every spelling of
// the same account shares (quoting, case, a trailing dot), so that a
// per-account limit cannot be dodged by respelling; a name that is no
// address is lower-cased as it is.
func AccountKey(user string) string {
	if a, err := fsm.ParseAddress(strings.TrimSpace(user)); err == nil {
		return a.Key()
	}
	return strings.ToLower(user)
}

// OwnAddress reports whether addr is mailbox itself, or it with a
// +detail, compared in the directory's canonical form with only ASCII
// letters folded: a lookalike that Unicode case folding would equate
// (the Kelvin sign for K) is not the same sender.
func OwnAddress(addr, mailbox string) bool {
	a, err := fsm.ParseAddress(addr)
	if err != nil {
		return false
	}
	m, err := fsm.ParseAddress(mailbox)
	if err != nil {
		return false
	}
	local, _, _ := strings.Cut(a.Local, "+")
	return a.Domain == m.Domain && asciiLower(local) == asciiLower(m.Local)
}

func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}
