package frontend

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Address checks. go-smtp has already parsed the path (RFC 5321 §4.1.2)
// and refused what it cannot parse with 501 5.5.2; these checks catch
// what it lets through. They stay liberal where real mail is sloppy, since
// a 5xx here bounces the message.

// maxPathOctets is the longest mailbox inside a path: RFC 5321
// §4.5.3.1.3 allows 256 octets including the angle brackets.
const maxPathOctets = 254

// maxSRSPathOctets is the longest SRS address of ours a RCPT takes: 17
// octets of SRS0 fields, an original sender of up to maxPathOctets, and
// "@" with a domain of up to 253. A sender near the path limit makes an
// SRS address past it (node/QUEUE.md, "SRS0"); the bounce to it must
// still be taken, and §4.5.3.1 asks servers to avoid fixed limits. Only
// a hash the node checks makes such an address route anywhere.
const maxSRSPathOctets = 17 + maxPathOctets + 1 + 253

// addrProblem is what is wrong with an address, if anything.
type addrProblem int

const (
	addrOK addrProblem = iota
	addrSyntax
	addrNonASCII // fine with SMTPUTF8, refused without (RFC 6531 §3.5)
)

// checkRecipient validates a forward-path mailbox. why explains an
// addrSyntax result.
func checkRecipient(addr string, utf8Allowed bool) (p addrProblem, why string) {
	if len(addr) > maxPathOctets && (len(addr) > maxSRSPathOctets || !isSRS(addr)) {
		return addrSyntax, "path too long" // RFC 5321 §4.5.3.1.3
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 {
		return addrSyntax, "expected local-part@domain"
	}
	if why := checkDomain(addr[at+1:]); why != "" {
		return addrSyntax, why
	}
	return checkText(addr, utf8Allowed)
}

// checkSender validates a reverse-path mailbox. It only refuses what
// cannot be written safely into a header field: senders' addresses (SRS,
// VERP, BATV) are often long or odd, and refusing them bounces real mail.
func checkSender(addr string, utf8Allowed bool) (p addrProblem, why string) {
	if addr == "" {
		return addrOK, "" // null reverse-path, RFC 5321 §4.5.5
	}
	return checkText(addr, utf8Allowed)
}

// checkText refuses control characters and invalid UTF-8, and reports
// non-ASCII text that the transaction did not announce with SMTPUTF8.
func checkText(s string, utf8Allowed bool) (addrProblem, string) {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			return addrSyntax, "control character"
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	switch {
	case ascii:
		return addrOK, ""
	case !utf8.ValidString(s):
		return addrSyntax, "invalid UTF-8"
	case !utf8Allowed:
		return addrNonASCII, ""
	default:
		return addrOK, ""
	}
}

// checkDomain checks the RFC 5321 §4.1.2 Domain rule (sub-domains of
// letters, digits and inner hyphens), allowing U-labels for SMTPUTF8.
// Address literals pass when they follow §4.1.3 (addressLiteral); the
// directory decides whether they are local. It returns "" when the domain
// is acceptable.
func checkDomain(d string) string {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") {
		return checkAddressLiteral(d[1 : len(d)-1])
	}
	if len(d) > 255 { // RFC 5321 §4.5.3.1.2
		return "domain too long"
	}
	for label := range strings.SplitSeq(d, ".") {
		if why := checkLabel(label); why != "" {
			return why
		}
	}
	return ""
}

func checkLabel(l string) string {
	if l == "" || len(l) > 63 {
		return "bad domain label length"
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return "domain label starts or ends with a hyphen"
	}
	for i := 0; i < len(l); i++ {
		if !isLabelByte(l[i]) {
			return "invalid character in domain"
		}
	}
	return ""
}

// checkAddressLiteral checks the inside of an RFC 5321 §4.1.3 address
// literal: a dotted IPv4 address, "IPv6:" and an IPv6 address, or a
// General-address-literal (Standardized-tag ":" 1*dcontent).
func checkAddressLiteral(lit string) string {
	if isIPv4Literal(lit) {
		return ""
	}
	tag, rest, ok := strings.Cut(lit, ":")
	if !ok || rest == "" {
		return "bad address literal"
	}
	if strings.EqualFold(tag, "IPv6") {
		if ip, err := netip.ParseAddr(rest); err == nil && ip.Is6() && ip.Zone() == "" {
			return ""
		}
		return "bad IPv6 address literal"
	}
	if tag == "" || tag[0] == '-' || tag[len(tag)-1] == '-' {
		return "bad address literal tag"
	}
	for i := 0; i < len(tag); i++ {
		if c := tag[i]; c >= 0x80 || !isLabelByte(c) {
			return "bad address literal tag"
		}
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c < 33 || c > 126 || c == '[' || c == '\\' || c == ']' { // dcontent
			return "bad address literal"
		}
	}
	return ""
}

// isIPv4Literal: IPv4-address-literal = Snum 3("." Snum), Snum 1*3DIGIT
// of at most 255 (RFC 5321 §4.1.3; leading zeros allowed, as there).
func isIPv4Literal(s string) bool {
	n := 0
	for part := range strings.SplitSeq(s, ".") {
		n++
		v, err := strconv.Atoi(part)
		if len(part) == 0 || len(part) > 3 || err != nil || part[0] == '+' || part[0] == '-' || v > 255 {
			return false
		}
	}
	return n == 4
}

func isLabelByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c >= 0x80
}
