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
// means to SELECT. It is used only where the library does not decode the
// name itself (GETQUOTAROOT).
func mutf7Decode(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errBadMailboxName
	}
	var b strings.Builder
	for {
		amp := strings.IndexByte(s, '&')
		if amp < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:amp])
		s = s[amp+1:]
		end := strings.IndexByte(s, '-')
		if end < 0 {
			return "", errBadMailboxName
		}
		if end == 0 {
			b.WriteByte('&')
		} else if err := mutf7Run(&b, s[:end]); err != nil {
			return "", err
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
