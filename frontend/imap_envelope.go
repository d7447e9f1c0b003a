package frontend

import (
	"mime"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// imapEnvelope is go-imap's ENVELOPE of header h (RFC 9051 §7.5.2),
// with an address field Go's strict parser refused read again address by
// address (imapLenientAddresses). The library gives NIL for a whole field
// when one address in it breaks RFC 5322: a list with one broken entry,
// or a sender whose local part ends in a dot (some mobile carriers hand
// out such addresses), showed as a message without sender or
// recipients in every client that lists mail by ENVELOPE.
func imapEnvelope(h textproto.Header) *imap.Envelope {
	env := imapserver.ExtractEnvelope(h)
	mh := gomessage.Header{Header: h}
	for _, f := range []struct {
		name string
		list *[]imap.Address
	}{
		{"From", &env.From}, {"Sender", &env.Sender}, {"Reply-To", &env.ReplyTo},
		{"To", &env.To}, {"Cc", &env.Cc}, {"Bcc", &env.Bcc},
	} {
		if len(*f.list) > 0 {
			continue
		}
		if v := strings.TrimSpace(mh.Get(f.name)); v != "" {
			*f.list = imapLenientAddresses(v)
		}
	}
	// Sender and Reply-To left empty default to From as the library
	// writes the envelope (RFC 9051 §7.5.2).
	imapLenientIDs(env, gomail.Header{Header: mh})
	return env
}

// imapLenientIDs fills ENVELOPE's message-id and in-reply-to, which are
// those header fields (RFC 9051 §7.5.2), where go-message's strict
// parser refused them: the library gives NIL for a Message-ID without
// "@" or angle brackets, and keeps no In-Reply-To id from the first one
// it refuses on (the RFC 822 phrase "Your message of ..." before the id,
// as older mailers write it). Clients that thread by ENVELOPE then lost
// the thread. The ids are read again as whatever stands between "<" and
// ">" (imapLenientMsgIDs); the library writes each back in brackets.
func imapLenientIDs(env *imap.Envelope, mh gomail.Header) {
	if env.MessageID == "" {
		if ids := imapLenientMsgIDs(mh.Get("Message-Id")); len(ids) > 0 {
			env.MessageID = ids[0]
		}
	}
	if _, err := mh.MsgIDList("In-Reply-To"); err != nil {
		env.InReplyTo = imapLenientMsgIDs(mh.Get("In-Reply-To"))
	}
}

// imapLenientMsgIDs reads message ids from a header value: each text
// between "<" and the next ">", or, with no brackets, the value itself
// when it is one word with an "@". An id must be text an IMAP string can
// carry (imapAddressText) and hold no bracket.
func imapLenientMsgIDs(v string) []string {
	var ids []string
	for rest := v; ; {
		lt := strings.IndexByte(rest, '<')
		if lt < 0 {
			break
		}
		gt := strings.IndexByte(rest[lt:], '>')
		if gt < 0 {
			break
		}
		id := strings.TrimSpace(rest[lt+1 : lt+gt])
		if id != "" && !strings.Contains(id, "<") && imapAddressText(id) {
			ids = append(ids, id)
		}
		rest = rest[lt+gt+1:]
	}
	if f := strings.Fields(v); len(ids) == 0 && len(f) == 1 && strings.Contains(f[0], "@") &&
		!strings.ContainsAny(f[0], "<>") && imapAddressText(f[0]) {
		ids = append(ids, f[0])
	}
	return ids
}

// imapLenientAddresses reads an address list entry by entry: split at
// commas outside quotes, comments and angle brackets (a group's "name:"
// and ";" dropped), each entry parsed on its own, and an entry the
// parser refuses taken as its <addr-spec> with the words before it as
// the name, or as its one word with an "@". Entries with neither, or
// whose address is no text (imapAddressText), are left out.
func imapLenientAddresses(v string) []imap.Address {
	parser := mail.AddressParser{WordDecoder: &mime.WordDecoder{}}
	var out []imap.Address
	for _, entry := range imapSplitAddresses(v) {
		if a, err := parser.Parse(entry); err == nil {
			if mbox, host, ok := strings.Cut(a.Address, "@"); ok {
				out = append(out, imap.Address{Name: a.Name, Mailbox: mbox, Host: host})
			}
			continue
		}
		name, addr := "", ""
		if lt := strings.LastIndexByte(entry, '<'); lt >= 0 && strings.HasSuffix(entry, ">") {
			addr = strings.TrimSpace(entry[lt+1 : len(entry)-1])
			name = strings.Trim(strings.TrimSpace(entry[:lt]), `"`)
			if d, err := parser.WordDecoder.DecodeHeader(name); err == nil {
				name = d
			}
		} else if f := strings.Fields(entry); len(f) == 1 {
			addr = f[0]
		} else {
			for _, w := range f {
				if strings.Contains(w, "@") {
					addr = strings.Trim(w, "<>")
				}
			}
		}
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 || !imapAddressText(addr) {
			continue
		}
		out = append(out, imap.Address{Name: name, Mailbox: addr[:at], Host: addr[at+1:]})
	}
	return out
}

// imapAddressText reports whether addr, taken where Go's parser refused
// it, is text an IMAP string can carry as it does: UTF-8 (a quoted string
// after UTF8=ACCEPT, RFC 9051 §9) without control characters (a literal
// holds no NUL, RFC 9051 §4.3). Go's parser refuses the rest as well.
func imapAddressText(addr string) bool {
	return utf8.ValidString(addr) && !strings.ContainsFunc(addr, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// imapSplitAddresses splits an address list at its top-level commas,
// dropping a group's display name ("name:") and its closing ";".
func imapSplitAddresses(v string) []string {
	var out []string
	var cur strings.Builder
	quoted, escaped, depth, angle := false, false, 0, false
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case escaped:
			escaped = false
		case c == '\\' && (quoted || depth > 0):
			escaped = true
		case quoted:
			quoted = c != '"'
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0:
		case c == '<':
			angle = true
		case c == '>':
			angle = false
		case angle:
		case c == ',' || c == ';':
			flush()
			continue
		case c == ':':
			cur.Reset() // a group's display name
			continue
		}
		cur.WriteByte(c)
	}
	flush()
	return out
}
