package frontend

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// refFold is the form SEARCH compares, computed on a whole text with the
// transformers one after another: the reference the streaming, run by
// run folding is checked against. Each invalid octet is U+FFFD.
func refFold(b []byte) []byte {
	var valid []byte
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		valid = utf8.AppendRune(valid, r)
		i += n
	}
	return norm.NFKC.Bytes(cases.Fold().Bytes(norm.NFKC.Bytes(valid)))
}

// TestIMAPReaderContainsAcrossReads: the streaming BODY/TEXT matcher
// answers as folding the whole text would (refFold), whatever the reads
// cut: a match across a cut, a rune cut in two, invalid octets, a needle
// in another case, composed and decomposed letters, combining marks to
// reorder, letters that fold to two; and with the buffers of one SEARCH
// reused for every message and key.
func TestIMAPReaderContainsAcrossReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var shared imapNeedle
	alphabet := []string{"a", "B", "é", "É", "ẞ", "\xe9", "\xff", " ", "\r\n", "x", "İ",
		"e\u0301", "\u0327", "\u0301", "ß", "SS", "ﬁ", "\u2126", "Ω", "日本", "\u00bd"}
	for i := range 300 {
		var text strings.Builder
		size := rng.IntN(80 << 10)
		for text.Len() < size {
			text.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		all := []byte(text.String())
		var needle []byte
		if len(all) > 0 && i%3 != 0 {
			at := rng.IntN(len(all))
			needle = all[at:min(len(all), at+1+rng.IntN(12))]
		} else {
			needle = []byte("éx" + alphabet[rng.IntN(len(alphabet))])
		}
		low := imapFold(nil, needle)
		want := bytes.Contains(refFold(all), refFold(needle))
		if got := imapReaderContains(bytes.NewReader(all), low); got != want {
			t.Fatalf("case %d: %d octets, needle %q: %v, want %v", i, len(all), needle, got, want)
		}
		shared.low = low // one SEARCH's buffers serve every message and key
		if got := shared.contains(bytes.NewReader(all)); got != want {
			t.Fatalf("case %d, reused buffers: needle %q: %v, want %v", i, needle, got, want)
		}
		if i%20 == 0 {
			if got := imapReaderContains(iotest.OneByteReader(bytes.NewReader(all)), low); got != want {
				t.Fatalf("case %d, one octet a read: needle %q: %v, want %v", i, needle, got, want)
			}
		}
	}
	cut := strings.Repeat("a", 32<<10-1) + "É" + "tail"
	if !imapReaderContains(strings.NewReader(cut), imapFold(nil, []byte("aéT"))) {
		t.Error("a match across a read that cut a rune was missed")
	}
}

// TestIMAPReaderContainsCutBeforeAFoldedMark: a read is not cut after a
// letter that composes with nothing but folds to one that does ("ß" to
// "ss", and "s" with a cedilla is "ş"), nor before a Hangul final jamo:
// whatever the reads, the text is folded as if whole.
func TestIMAPReaderContainsCutBeforeAFoldedMark(t *testing.T) {
	for _, tc := range []struct{ text, needle string }{
		{"Gru\u00df\u0327e", "s\u015fe"},
		{strings.Repeat("a", 32<<10-2) + "\u00df\u0327e", "s\u015fe"},
		{"\uac00\u11a8", "\uac01"},
	} {
		want := bytes.Contains(refFold([]byte(tc.text)), refFold([]byte(tc.needle)))
		if !want {
			t.Fatalf("%q does not hold %q whole", tc.text, tc.needle)
		}
		low := imapFold(nil, []byte(tc.needle))
		if !imapReaderContains(iotest.OneByteReader(strings.NewReader(tc.text)), low) {
			t.Errorf("%d octets ending %q read an octet at a time: %q not found", len(tc.text), tc.text[max(0, len(tc.text)-12):], tc.needle)
		}
		if !imapReaderContains(strings.NewReader(tc.text), low) {
			t.Errorf("%d octets ending %q in full reads: %q not found", len(tc.text), tc.text[max(0, len(tc.text)-12):], tc.needle)
		}
	}
}
