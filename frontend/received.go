package frontend

import (
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"powermail/node"
)

// traceInfo is what the trace header fields record about one transaction.
type traceInfo struct {
	from     string // envelope sender, "" for the null sender
	helo     string // EHLO/LHLO argument
	remote   net.Addr
	by       string // our Hostname
	protocol string // RFC 3848 / RFC 6531 §3.7.3 "with" keyword
	id       string
	rcpts    []string // accepted RCPT addresses, as the client sent them (<postmaster> as Postmaster)
	date     time.Time
}

// traceHeaders renders the header fields a final-delivery server prepends:
// Return-Path (RFC 5321 §4.4: the delivery server MUST insert it) and a
// Received stamp (RFC 5321 §4.4 Stamp grammar). Client-supplied text is
// sanitised so that it cannot end a header line early. go-smtp hands a
// quoted local part over unquoted, so the paths are quoted again
// (node.SMTPPath): `<john doe@far.org>` is no Path.
func traceHeaders(ti traceInfo) string {
	var b strings.Builder
	b.WriteString("Return-Path: <")
	b.WriteString(tracePath(ti.from))
	b.WriteString(">\r\n")

	b.WriteString("Received: from ")
	b.WriteString(fromDomain(ti.helo, ti.remote))
	b.WriteString("\r\n\tby ")
	b.WriteString(ti.by)
	b.WriteString(" with ")
	b.WriteString(ti.protocol)
	b.WriteString(" id ")
	b.WriteString(ti.id)
	// RFC 5321 §4.4: name the recipient only when there is exactly one,
	// so that one copy does not disclose the others (Bcc).
	if len(ti.rcpts) == 1 {
		b.WriteString("\r\n\tfor <")
		b.WriteString(tracePath(ti.rcpts[0]))
		b.WriteString(">")
	}
	b.WriteString(";\r\n\t")
	b.WriteString(ti.date.Format(time.RFC1123Z)) // RFC 5322 §3.3 date-time
	b.WriteString("\r\n")
	return b.String()
}

// fromDomain renders RFC 5321 §4.4 Extended-Domain: the HELO name with
// the TCP-info address literal. A HELO that is not a domain or address
// literal is kept only inside a comment.
func fromDomain(helo string, remote net.Addr) string {
	lit := addressLiteral(remote)
	switch {
	case checkDomain(helo) == "" && helo != "" && lit != "":
		return headerSafe(helo, "()") + " (" + lit + ")"
	case checkDomain(helo) == "" && helo != "":
		return headerSafe(helo, "()")
	case lit != "":
		return lit + " (helo=" + headerSafe(helo, `()\`) + ")"
	default:
		return "unknown (helo=" + headerSafe(helo, `()\`) + ")"
	}
}

// addressLiteral renders the remote IP as RFC 5321 §4.1.3 address
// literal, or "" when the connection has no IP (unix socket, pipe).
func addressLiteral(a net.Addr) string {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	if ip == nil {
		return ""
	}
	if v4 := ip.To4(); v4 != nil {
		return "[" + v4.String() + "]"
	}
	return "[IPv6:" + ip.String() + "]"
}

// maxTraceText caps client-supplied text in trace fields, keeping header
// lines well under RFC 5322 §2.1.1's 998 octets.
const maxTraceText = 256

// tracePath is addr as a trace field's path (node.SMTPPath), made
// header-safe. A path longer than maxTraceText is cut inside its local
// part when that is quoted, so that the quoted string still ends before
// the domain: cut at the end, the string stayed open over the closing
// bracket, or a quoting backslash escaped what came after it.
func tracePath(addr string) string {
	p := node.SMTPPath(addr)
	at := strings.LastIndexByte(addr, '@')
	if len(p) <= maxTraceText || !strings.HasPrefix(p, `"`) || at < 0 {
		return headerSafe(p, "<>")
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range []byte(addr[:at]) {
		if c == '"' || c == '\\' {
			if b.Len()+3 > maxTraceText/2 {
				break
			}
			b.WriteByte('\\') // quoted-pairSMTP
		} else if b.Len()+2 > maxTraceText/2 {
			break
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	// At most half of maxTraceText: headerSafe may cut only the domain.
	return headerSafe(b.String()+addr[at:], "<>")
}

// headerSafe replaces control characters, invalid UTF-8 and the bytes in
// extra with '?', and truncates to maxTraceText octets.
func headerSafe(s, extra string) string {
	if len(s) > maxTraceText {
		s = s[:maxTraceText]
	}
	var b strings.Builder
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size <= 1,
			r < 0x20, r == 0x7f,
			r < utf8.RuneSelf && strings.ContainsRune(extra, r):
			b.WriteByte('?')
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

// withProtocol returns the RFC 3848 "with" keyword (UTF8 variants from RFC
// 6531 §3.7.3).
func withProtocol(lmtp, tls, utf8, auth bool) string {
	p := "ESMTP"
	if lmtp {
		p = "LMTP"
	}
	if utf8 {
		p = "UTF8" + strings.TrimPrefix(p, "E")
	}
	if tls {
		p += "S"
	}
	if auth {
		p += "A" // RFC 3848: ESMTPA, ESMTPSA
	}
	return p
}
