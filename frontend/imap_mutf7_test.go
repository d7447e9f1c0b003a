package frontend

import "testing"

// Modified UTF-7 (RFC 3501 §5.1.3), with the RFC's own example and the
// ways a name can be malformed.
func TestMUTF7Decode(t *testing.T) {
	good := map[string]string{
		"INBOX":                           "INBOX",
		"Entw&APw-rfe":                    "Entwürfe",
		"&-":                              "&",
		"a&-b&-":                          "a&b&",
		"&AOQ-&-&APY-":                    "ä&ö", // "&-" between two runs is no null shift
		"&AOQ-x&APY-":                     "äxö",
		"~peter/mail/&U,BTFw-/&ZeVnLIqe-": "~peter/mail/台北/日本語",
		"smile &2D3eAA-":                  "smile \U0001F600",
		"Entwürfe":                        "Entwürfe", // raw UTF-8, as the library lets it
		"":                                "",
	}
	for in, want := range good {
		if got, err := mutf7Decode(in); err != nil || got != want {
			t.Errorf("mutf7Decode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"a&b",        // no "-" ends the run
		"&AGE-",      // "a", which is written directly
		"&2D0-",      // a lone high surrogate
		"&3gA-",      // a lone low surrogate
		"&A-",        // not a whole octet
		"&AP-",       // an odd number of octets
		"&APx-",      // trailing bits not zero
		"&AP/8-",     // "/" is not modified BASE64
		"&AP\nw-",    // the decoder would skip the newline
		"x\xffy",     // not UTF-8
		"a\tb",       // a control character written directly
		"a\x7fb",     // DEL written directly
		"&AOQ-&APY-", // a null shift: "-&" while in BASE64
	} {
		if got, err := mutf7Decode(in); err == nil {
			t.Errorf("mutf7Decode(%q) = %q, want an error", in, got)
		}
	}
}
