package frontend

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// errBadMailboxName is a mailbox name that is not modified UTF-7.
var errBadMailboxName = errors.New("imap: invalid modified UTF-7 mailbox name")

// mutf7Base64 is RFC 3501 §5.1.3's modified BASE64: "," for "/", no
// padding.
var mutf7Base64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").
	WithPadding(base64.NoPadding).Strict()

// mutf7Decode decodes a mailbox name as the client sent it (RFC 9051
// §5.1.3, from RFC 3501 §5.1.3): "&" starts UTF-16BE in modified BASE64,
// "-" ends it, and "&-" is "&" itself. Raw UTF-8 passes through, as it
// does in the library's own decoder, so that a name means here what it
// means to SELECT; what the RFC forbids and the library refuses is
// refused here too: a control character written directly (0x00-0x1f and
// 0x7f are "represented in modified BASE64"), and a null shift, one
// BASE64 run right after another ("-&" while in BASE64 "not
// permitted"). It is used only where the library does not decode the
// name itself (GETQUOTAROOT).
func mutf7Decode(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errBadMailboxName
	}
	var b strings.Builder
	afterRun := false // the last thing decoded was a BASE64 run
	for {
		amp := strings.IndexByte(s, '&')
		direct := s
		if amp >= 0 {
			direct = s[:amp]
		}
		if strings.ContainsFunc(direct, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", errBadMailboxName
		}
		b.WriteString(direct)
		if amp < 0 {
			return b.String(), nil
		}
		if amp > 0 {
			afterRun = false
		}
		s = s[amp+1:]
		end := strings.IndexByte(s, '-')
		switch {
		case end < 0:
			return "", errBadMailboxName
		case end == 0:
			b.WriteByte('&')
			afterRun = false
		case afterRun:
			return "", errBadMailboxName
		default:
			if err := mutf7Run(&b, s[:end]); err != nil {
				return "", err
			}
			afterRun = true
		}
		s = s[end+1:]
	}
}

// mutf7Run decodes one BASE64 run into b. A run must hold whole UTF-16
// units and pairs, and nothing that could have been written directly
// (printable US-ASCII).
func mutf7Run(b *strings.Builder, run string) error {
	if strings.ContainsAny(run, "\r\n") { // the decoder would skip them
		return errBadMailboxName
	}
	raw, err := mutf7Base64.DecodeString(run)
	if err != nil || len(raw)%2 != 0 {
		return errBadMailboxName
	}
	for i := 0; i < len(raw); i += 2 {
		r := rune(raw[i])<<8 | rune(raw[i+1])
		if utf16.IsSurrogate(r) {
			if i += 2; i >= len(raw) {
				return errBadMailboxName
			}
			r = utf16.DecodeRune(r, rune(raw[i])<<8|rune(raw[i+1]))
			if r == utf8.RuneError {
				return errBadMailboxName
			}
		} else if r >= 0x20 && r <= 0x7e {
			return errBadMailboxName
		}
		b.WriteRune(r)
	}
	return nil
}
