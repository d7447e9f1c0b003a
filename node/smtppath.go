package node

import "strings"

// SMTPPath writes addr for a MAIL or RCPT command or a trace field's
// path (Return-Path, Received's "for"), its local part quoted when it is
// no Dot-string (RFC 5321 §4.1.2). go-smtp's server hands a
// quoted local part over unquoted ("john doe"@far.org as
// john doe@far.org), so an address taken from an envelope must be quoted
// again before it goes into one: unquoted, a space ends the path, and the
// next hop refuses the command. UTF-8 counts as atext (RFC 6531 §3.3).
func SMTPPath(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || isDotString(addr[:at]) {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(addr[:at]) {
		if c == '"' || c == '\\' {
			b.WriteByte('\\') // quoted-pairSMTP
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	b.WriteString(addr[at:])
	return b.String()
}

// isDotString: Dot-string = Atom *("." Atom) (RFC 5321 §4.1.2).
func isDotString(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '.' && c < 0x80 && !isAtext(c) {
			return false
		}
	}
	return true
}

// isAtext is RFC 5321 §4.1.2 atext (RFC 5322 §3.2.3) for ASCII.
func isAtext(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}
