package fsm

import (
	"strings"
	"testing"
	"unicode"
)

func TestFoldTableIsSorted(t *testing.T) {
	for i := 1; i < len(foldTable); i++ {
		if foldTable[i-1][0] >= foldTable[i][0] {
			t.Fatalf("foldTable[%d] = %U is not after %U", i, foldTable[i][0], foldTable[i-1][0])
		}
	}
}

// The pinned table keeps the mappings keys were made with, whatever the
// toolchain's Unicode version.
func TestFoldKnownMappings(t *testing.T) {
	for in, want := range map[string]string{
		"John.Smith":      "john.smith",
		"\u212Aelvin":     "kelvin",   // KELVIN SIGN lowers to ASCII k
		"\u0130stanbul":   "istanbul", // simple mapping of dotted capital I
		"ΣΊΣΥΦΟΣ":         "σίσυφοσ",  // no final-sigma context, as strings.ToLower
		"\U00010400x":     "\U00010428x",
		"bad\xffbyte":     "bad\uFFFDbyte",
		"ÅNGSTRÖM+Detail": "ångström+detail",
	} {
		if got := foldCase(in); got != want {
			t.Errorf("foldCase(%q) = %q, want %q", in, got, want)
		}
	}
}

// With the toolchain the table was made from, folding is exactly what
// keys were before the table: strings.ToLower.
func TestFoldMatchesTheToolchainOfItsVersion(t *testing.T) {
	if unicode.Version != foldUnicodeVersion {
		t.Logf("toolchain Unicode %s, table %s: only the pinned mappings are checked", unicode.Version, foldUnicodeVersion)
		return
	}
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if got, want := foldRune(r), unicode.ToLower(r); got != want {
			t.Fatalf("foldRune(%U) = %U, toolchain %U", r, got, want)
		}
	}
	for _, s := range []string{"", "abc", "ÄÖÜ", "a\x80b", "\xed\xa0\x80", "Ǆǅǆ", "ẞ", "Ⅻ"} {
		if got, want := foldCase(s), strings.ToLower(s); got != want {
			t.Errorf("foldCase(%q) = %q, strings.ToLower %q", s, got, want)
		}
	}
}

func BenchmarkFoldCase(b *testing.B) {
	for _, s := range []string{"John.Smith", "Jörg.Müller"} {
		b.Run(s, func(b *testing.B) {
			for b.Loop() {
				_ = foldCase(s)
			}
		})
	}
}
