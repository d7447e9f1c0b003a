package node

import (
	"strings"

	"golang.org/x/net/idna"
)

// asciiAddress writes the domain of addr in its ASCII (A-label) form
// (RFC 5890, IDNA2008 lookup rules), so that a recipient given with a
// Unicode domain under SMTPUTF8 (RFC 6531) finds the domain the directory
// holds as xn--: the directory keeps domains in ASCII only. An address
// whose domain does not convert is returned as it is, and refused as
// before.
func asciiAddress(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 || isASCII(addr[at+1:]) {
		return addr
	}
	d, err := idna.Lookup.ToASCII(addr[at+1:])
	if err != nil {
		return addr
	}
	return addr[:at+1] + d
}

// ASCIIAddress is addr with its domain in lower-case A-labels, as the
// directory and the outbound queue hold domains, so that spellings of
// one address that differ only in the domain's form or case are one
// recipient (RFC 5321 §2.4: the local part keeps its case). An address
// whose domain does not convert is returned as it is.
func ASCIIAddress(addr string) string {
	a := asciiAddress(addr)
	at := strings.LastIndexByte(a, '@')
	if at < 0 || !isASCII(a[at+1:]) {
		return a
	}
	return a[:at+1] + strings.ToLower(a[at+1:])
}

// asciiName is asciiAddress for a bare domain, as DNS needs it.
func asciiName(domain string) string {
	if isASCII(domain) {
		return domain
	}
	if d, err := idna.Lookup.ToASCII(domain); err == nil {
		return d
	}
	return domain
}

func isASCII[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
