package node

import (
	"errors"
	"testing"
)

// The pop3_uidl_format subset a restore follows renders as Dovecot's
// var_expand does: X is lower-case hexadecimal (printf's %llx), a width
// written with a leading 0 pads with zeros and never cuts, and one
// without cuts to its first characters and never pads; anything else is
// refused by name.
func TestPOP3UIDLFormat(t *testing.T) {
	e := uidlEntry{uid: 42, base: "1700000000.M1.host", guid: "00aa"}
	for format, want := range map[string]string{
		"":           "0000002a499602d2",
		"%08Xu%08Xv": "0000002a499602d2",
		"%08Xv%08Xu": "499602d20000002a",
		"%08xu%08xv": "0000002a499602d2",
		"%Xu":        "2a",
		"%v.%u":      "1234567890.42",
		"%v-%u":      "1234567890-42",
		"%u":         "42",
		"%g":         "00aa",
		"%f":         "1700000000.M1.host",
		"100%%-%04u": "100%-0042",
		"%4u-%4v":    "42-1234",
		"%8Xu%8Xv":   "2a499602d2",
		"%01v":       "1234567890",
		"UID%u-%v":   "UID42-1234567890",
	} {
		f, err := ParsePOP3UIDLFormat(format)
		if err != nil {
			t.Errorf("%q: %v", format, err)
			continue
		}
		if got := f.render(e, 1234567890); got != want {
			t.Errorf("%q renders %q, want %q", format, got, want)
		}
	}
	if got := mustFormat(t, "%g").render(uidlEntry{uid: 1, base: "b"}, 1); got != "b" {
		t.Errorf("%%g without a G field = %q, want the file name", got)
	}
	for _, bad := range []string{"%m", "%08Xu%m", "%{uid}", "%", "%08", "%2g", "%99u", "%99999999999999999999u"} {
		if _, err := ParsePOP3UIDLFormat(bad); !errors.Is(err, ErrPOP3UIDLFormat) {
			t.Errorf("%q: %v, want ErrPOP3UIDLFormat", bad, err)
		}
	}
}

func mustFormat(t *testing.T, s string) uidlFormat {
	t.Helper()
	f, err := ParsePOP3UIDLFormat(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
