package fsm

import (
	"strings"
)

// Address rules.
//
// Domains are case-insensitive (RFC 5321 §2.4) and stored in lower case.
// They must be LDH host names (RFC 1035 §2.3.1, RFC 1123 §2.1); an
// internationalised domain is given in its A-label (xn--) form.
//
// Local parts: RFC 5321 §2.4 leaves the interpretation of a local part to
// the host that owns the mailbox and discourages exploiting case. PowerMail
// owns its mailboxes, so it preserves the case an operator typed for
// display but matches local parts case-insensitively: "John@" and "john@"
// are one mailbox, and two mailboxes that differ only in case cannot
// exist. Mailboxes and forwards are named by dot-atom local parts
// (RFC 5322 §3.2.3); a quoted-string local part that is equivalent to a
// dot-atom is accepted at RCPT time after unquoting. Sub-addresses
// (RFC 5233) "user+detail@" resolve to "user@" when no exact entry exists.
// A catch-all forward for a domain is written "@domain". From command
// encoding 13 a new name's local part must also be text that shows what
// it is, and is stored in NFC (localpart.go); parsing alone does not
// check it, so that names stored before stay addressable.

const (
	maxLocalLen   = 64  // RFC 5321 §4.5.3.1.1
	maxDomainLen  = 253 // RFC 1035 §2.3.4, less the trailing dot
	maxLabelLen   = 63
	maxAddressLen = 254 // RFC 5321 §4.5.3.1.3 path less the brackets
)

// NormalizeDomain validates a domain and returns its canonical form.
func NormalizeDomain(d string) (string, error) {
	d = strings.TrimSuffix(foldCase(strings.TrimSpace(d)), ".")
	if d == "" {
		return "", errorf(ErrInvalid, "empty domain")
	}
	if len(d) > maxDomainLen {
		return "", errorf(ErrInvalid, "domain %q is longer than %d characters", d, maxDomainLen)
	}
	for rest := d; ; {
		label, tail, more := strings.Cut(rest, ".")
		if err := checkLabel(label); err != nil {
			return "", errorf(ErrInvalid, "domain %q: %s", d, err.Error())
		}
		if !more {
			return d, nil
		}
		rest = tail
	}
}

func checkLabel(l string) error {
	if l == "" {
		return errorf(ErrInvalid, "empty label")
	}
	if len(l) > maxLabelLen {
		return errorf(ErrInvalid, "label %q is longer than %d characters", l, maxLabelLen)
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return errorf(ErrInvalid, "label %q starts or ends with a hyphen", l)
	}
	// By rune, so that the error names the character typed rather than
	// the first byte of its UTF-8 form; the set accepted is the same.
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return errorf(ErrInvalid, "label %q has character %q (use the xn-- form for international names)", l, c)
		}
	}
	return nil
}

// Address is a parsed, validated mail address.
type Address struct {
	Local  string // as given; "" for a catch-all
	Domain string // canonical
}

// Key is the case-folded identity of the address used in the state.
func (a Address) Key() string { return foldCase(a.Local) + "@" + a.Domain }

// String renders the address as given.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// ParseAddress validates a mailbox address (local@domain).
func ParseAddress(s string) (Address, error) {
	return parseAddress(s, false)
}

// ParseRemoteAddress validates another host's mailbox address, as a
// queue recipient may name it: as ParseAddress, but its local part may
// be longer than RFC 5321 §4.5.3.1.1's 64 octets, within the 254 of the
// whole address. The local part is the other host's to interpret
// (§2.4), and longer ones are in use: SRS addresses of list and VERP
// senders, wrapped by each forwarder a message passed (node/srs.go).
func ParseRemoteAddress(s string) (Address, error) {
	return parseAddressMax(s, false, maxAddressLen)
}

// ParseForwardSource validates the source of a forward, which may be a
// catch-all "@domain".
func ParseForwardSource(s string) (Address, error) {
	return parseAddress(s, true)
}

func parseAddress(s string, allowCatchAll bool) (Address, error) {
	return parseAddressMax(s, allowCatchAll, maxLocalLen)
}

// parseAddressMax is parseAddress taking local parts of up to maxLocal
// octets.
func parseAddressMax(s string, allowCatchAll bool, maxLocal int) (Address, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxAddressLen {
		return Address{}, errorf(ErrInvalid, "address %q is longer than %d characters", s, maxAddressLen)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, errorf(ErrInvalid, "address %q has no @domain", s)
	}
	local, dom := s[:at], s[at+1:]
	d, err := NormalizeDomain(dom)
	if err != nil {
		return Address{}, errorf(ErrInvalid, "address %q: %s", s, err.Error())
	}
	if local == "" && allowCatchAll {
		return Address{Domain: d}, nil
	}
	local, err = normalizeLocalMax(local, maxLocal)
	if err != nil {
		return Address{}, errorf(ErrInvalid, "address %q: %s", s, err.Error())
	}
	return Address{Local: local, Domain: d}, nil
}

// normalizeLocal accepts a dot-atom, or a quoted string whose content is a
// valid dot-atom (which is then unquoted, RFC 5321 §4.1.2).
func normalizeLocal(l string) (string, error) { return normalizeLocalMax(l, maxLocalLen) }

// normalizeLocalMax is normalizeLocal taking up to maxLocal octets.
func normalizeLocalMax(l string, maxLocal int) (string, error) {
	if len(l) >= 2 && l[0] == '"' && l[len(l)-1] == '"' {
		l = strings.ReplaceAll(l[1:len(l)-1], `\`, "")
	}
	if l == "" {
		return "", errorf(ErrInvalid, "empty local part")
	}
	if len(l) > maxLocal {
		return "", errorf(ErrInvalid, "local part longer than %d characters", maxLocal)
	}
	if l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return "", errorf(ErrInvalid, "local part %q is not a dot-atom", l)
	}
	for i := 0; i < len(l); i++ {
		if !isAtext(l[i]) && l[i] != '.' {
			return "", errorf(ErrInvalid, "local part %q has character %q", l, l[i])
		}
	}
	return l, nil
}

// isAtext reports RFC 5322 §3.2.3 atext; bytes >= 0x80 are allowed as
// UTF-8 (RFC 6531 §3.3).
func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// subaddressBase returns "user" for "user+detail", or "" if there is no
// detail part (RFC 5233).
func subaddressBase(local string) string {
	if i := strings.IndexByte(local, '+'); i > 0 {
		return local[:i]
	}
	return ""
}
