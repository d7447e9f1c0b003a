package fsm

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

const (
	nfdE = "e\u0301" // e and COMBINING ACUTE ACCENT
	nfcE = "\u00e9"  // LATIN SMALL LETTER E WITH ACUTE
)

// localFixture is a state at command encoding enc with example.com.
func localFixture(t *testing.T, enc int) *applier {
	t.Helper()
	a := newApplier(t)
	a.raiseTo(enc)
	a.must(&DomainAdd{Name: "example.com"})
	return a
}

func (a *applier) addMailbox(addr string) Result {
	a.t.Helper()
	return a.apply(&MailboxAdd{Mailboxes: []NewMailbox{{Address: addr}}})
}

// badLocals are local parts refused from 13, with what the error names.
var badLocals = map[string]string{
	"a\u200bb":    "U+200B, an invisible format character", // ZERO WIDTH SPACE
	"a\u200db":    "U+200D, an invisible format character", // ZERO WIDTH JOINER
	"a\u202eb":    "U+202E, an invisible format character", // RIGHT-TO-LEFT OVERRIDE
	"a\u00adb":    "U+00AD, an invisible format character", // SOFT HYPHEN
	"a\u0085b":    "U+0085, a control character",           // NEXT LINE
	"a\u00a0b":    "U+00A0, a space or separator",          // NO-BREAK SPACE
	"a\u3000b":    "U+3000, a space or separator",          // IDEOGRAPHIC SPACE
	"a\u2028b":    "U+2028, a space or separator",          // LINE SEPARATOR
	"a\u0378b":    "U+0378, unassigned in Unicode 15.0.0",
	"a\ufdd0b":    "U+FDD0, a non-character",
	"a\U0010fffe": "U+10FFFE, a non-character",
	"a\ufffdb":    "U+FFFD, the replacement character",
}

// Below 13 apply takes every byte from 0x80 up, as every release did:
// invisible characters, a decomposed form beside the precomposed one,
// and a domain that folds to ASCII from a lookalike.
func TestLocalPartGateBelowEncoding13(t *testing.T) {
	a := localFixture(t, EncodingJSON12)
	for l := range badLocals {
		if r := a.addMailbox(l + "@example.com"); r.Err != nil {
			t.Fatalf("%q at 12: %v, want it taken as before", l, r.Err)
		}
	}
	for _, l := range []string{nfdE, nfcE} {
		if r := a.addMailbox(l + "@example.com"); r.Err != nil {
			t.Fatalf("%q at 12: %v", l, r.Err)
		}
	}
	if mb, err := a.s.Mailbox(nfdE + "@example.com"); err != nil || mb.Address != nfdE+"@example.com" {
		t.Fatalf("decomposed mailbox at 12: %q, %v; want it stored as given", mb.Address, err)
	}
	if r := a.apply(&ForwardAdd{Address: "f\u200bx@example.com", Targets: []string{nfdE + "@example.com"}}); r.Err != nil {
		t.Fatalf("forward with a zero-width space at 12: %v", r.Err)
	}
	if r := a.apply(&DomainAdd{Name: "\u212Aelvin.example"}); r.Err != nil {
		t.Fatalf("Kelvin-sign domain at 12: %v, want it folded to kelvin.example as before", r.Err)
	}
	// Lookups try no other form below 13.
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "o" + nfcE + "@example.com"}}})
	if _, err := a.s.Resolve("o" + nfdE + "@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("decomposed lookup of a precomposed name at 12: %v, want ErrNotFound", err)
	}
	if _, err := a.s.Mailbox("o" + nfdE + "@example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("decomposed login of a precomposed name at 12: %v, want ErrNotFound", err)
	}
}

// From 13 a new mailbox, forward or catch-all domain whose name does
// not show what it is is refused, with an error naming the character.
func TestLocalPartRefusedAtEncoding13(t *testing.T) {
	a := localFixture(t, EncodingJSON13)
	for l, want := range badLocals {
		for _, c := range []Command{
			&MailboxAdd{Mailboxes: []NewMailbox{{Address: l + "@example.com"}}},
			&ForwardAdd{Address: l + "@example.com", Targets: []string{"x@remote.example"}},
		} {
			r := a.apply(c)
			if !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), want) {
				t.Errorf("%T %q: %v, want ErrInvalid naming %q", c, l, r.Err, want)
			}
		}
	}
	for _, ok := range []string{"j\u00f6rg", "\u7528\u6237", "\U0001F600", "d\u00e9j\u00e0.vu"} {
		if r := a.addMailbox(ok + "@example.com"); r.Err != nil {
			t.Errorf("%q: %v, want it taken", ok, r.Err)
		}
	}
	for _, c := range []Command{
		&DomainAdd{Name: "\u212Aelvin.example"},
		&MailboxAdd{Mailboxes: []NewMailbox{{Address: "k@\u212Aexample.com"}}},
		&ForwardAdd{Address: "@\u212Aexample.com", Targets: []string{"x@remote.example"}},
	} {
		if r := a.apply(c); !errors.Is(r.Err, ErrInvalid) || !strings.Contains(r.Err.Error(), "xn--") {
			t.Errorf("%T with a Kelvin sign in the domain: %v, want ErrInvalid", c, r.Err)
		}
	}
}

// Bytes that are no UTF-8 never reach apply through JSON (they arrive as
// U+FFFD, refused above), but the check names them too.
func TestLocalPartInvalidUTF8(t *testing.T) {
	err := checkLocalText("ab\xffc")
	if err == nil || !strings.Contains(err.Error(), "not valid UTF-8 (byte 0xFF at 2)") {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	if err := checkLocalText("plain.ascii+tag"); err != nil {
		t.Fatal(err)
	}
}

// From 13 a new name is stored in NFC, and a lookup (RCPT, login) in
// another form finds it, before the sub-address base and the catch-all.
func TestLocalPartNFCAtEncoding13(t *testing.T) {
	a := localFixture(t, EncodingJSON13)
	if r := a.addMailbox(nfdE + "@example.com"); r.Err != nil {
		t.Fatal(r.Err)
	}
	mb, err := a.s.Mailbox(nfcE + "@example.com")
	if err != nil || mb.Address != nfcE+"@example.com" {
		t.Fatalf("stored as %q, %v; want NFC", mb.Address, err)
	}
	if r := a.addMailbox(nfcE + "@example.com"); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("precomposed beside decomposed: %v, want ErrExists", r.Err)
	}
	r := a.apply(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "o" + nfcE + "@example.com"}, {Address: "o" + nfdE + "@example.com"}}})
	if !errors.Is(r.Err, ErrExists) {
		t.Fatalf("both forms in one batch: %v, want ErrExists", r.Err)
	}
	a.must(&ForwardAdd{Address: "@example.com", Targets: []string{"catch@remote.example"}})
	for _, rcpt := range []string{nfdE + "@example.com", strings.ToUpper(nfdE) + "@example.com", nfdE + "+tag@example.com"} {
		res, err := a.s.Resolve(rcpt)
		if err != nil || len(res.Mailboxes) != 1 || res.Mailboxes[0] != nfcE+"@example.com" {
			t.Errorf("resolve %q: %+v, %v; want the NFC mailbox, not the catch-all", rcpt, res, err)
		}
	}
	if mb, err := a.s.Mailbox(nfdE + "@example.com"); err != nil || mb.Address != nfcE+"@example.com" {
		t.Fatalf("login by the decomposed form: %q, %v", mb.Address, err)
	}
	// A forward's source and local targets are stored in NFC too.
	a.must(&ForwardAdd{Address: "l" + nfdE + "@example.com", Targets: []string{nfdE + "@example.com", "r" + nfdE + "@remote.example"}})
	fw, err := a.s.Forward("l" + nfcE + "@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{nfcE + "@example.com", "r" + nfdE + "@remote.example"}; strings.Join(fw.Targets, ",") != strings.Join(want, ",") {
		t.Fatalf("targets %q, want %q (local in NFC, remote as given)", fw.Targets, want)
	}
	if r := a.applyAs(&ForwardAdd{Address: "l" + nfdE + "@example.com", Targets: []string{"x@remote.example"}, Replace: true}, NewestEncoding); r.Err != nil {
		t.Fatalf("replace by the decomposed form: %v", r.Err)
	}
}

// Names stored before 13 stay addressable by their own bytes: lookups,
// updates and removals find them, and a forward may name them.
func TestLocalPartOldNamesAfterEncoding13(t *testing.T) {
	a := localFixture(t, EncodingJSON12)
	zw := "a\u200bb@example.com"
	for _, addr := range []string{nfdE + "@example.com", zw} {
		if r := a.addMailbox(addr); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	a.raiseTo(EncodingJSON13)
	for _, addr := range []string{nfdE + "@example.com", zw} {
		res, err := a.s.Resolve(addr)
		if err != nil || len(res.Mailboxes) != 1 || res.Mailboxes[0] != addr {
			t.Fatalf("resolve %q: %+v, %v", addr, res, err)
		}
		if mb, err := a.s.Mailbox(addr); err != nil || mb.Address != addr {
			t.Fatalf("mailbox %q: %q, %v", addr, mb.Address, err)
		}
	}
	if r := a.addMailbox(nfdE + "@example.com"); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("decomposed again: %v, want ErrExists", r.Err)
	}
	q := int64(10)
	a.must(&MailboxUpdate{Address: zw, QuotaBytes: &q})
	a.must(&ForwardAdd{Address: zw, Targets: []string{nfdE + "@example.com"}, KeepCopy: true})
	fw, err := a.s.Forward(zw)
	if err != nil || fw.Targets[0] != nfdE+"@example.com" {
		t.Fatalf("forward to an old name: %+v, %v; want its spelling kept", fw, err)
	}
	a.must(&ForwardRemove{Address: zw})
	a.must(&MailboxRemove{Address: zw})
}

// The pinned table agrees with the toolchain it was made from.
func TestLocalTableMatchesTheToolchainOfItsVersion(t *testing.T) {
	for i := 1; i < len(localRefused); i++ {
		if localRefused[i-1][1] >= localRefused[i][0] {
			t.Fatalf("localRefused[%d] overlaps the range before it", i)
		}
	}
	if unicode.Version != localUnicodeVersion {
		t.Logf("toolchain Unicode %s, table %s: not compared", unicode.Version, localUnicodeVersion)
		return
	}
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		refused := refusedRune(r) != ""
		want := unicode.In(r, unicode.Cc, unicode.Cf, unicode.Cs, unicode.Zs, unicode.Zl, unicode.Zp) ||
			!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
		if refused != want {
			t.Fatalf("%U: refused %v, want %v", r, refused, want)
		}
	}
}

// NFC is stable for assigned characters (Unicode's normalization
// stability policy), so x/text computes the NFC every node computes as
// long as its tables are not older than the refusal table, which lets
// only code points assigned in its version through.
func TestLocalNFCTablesNotOlder(t *testing.T) {
	if versionLess(norm.Version, localUnicodeVersion) {
		t.Fatalf("x/text normalizes by Unicode %s, older than the table's %s", norm.Version, localUnicodeVersion)
	}
}

func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(as), len(bs)) {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
