package frontend

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// TestIMAPReaderContainsAcrossReads: the streaming BODY/TEXT matcher
// answers as lower-casing the whole text would, whatever the reads cut:
// a match across a cut, a rune cut in two, invalid octets, a needle in
// another case; and with the buffers of one SEARCH reused for every
// message and key.
func TestIMAPReaderContainsAcrossReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var shared imapNeedle
	alphabet := []string{"a", "B", "é", "É", "ẞ", "\xe9", "\xff", " ", "\r\n", "x", "İ"}
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
		low := imapLower(nil, needle)
		want := bytes.Contains(bytes.ToLower(all), bytes.ToLower(needle))
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
	if !imapReaderContains(strings.NewReader(cut), imapLower(nil, []byte("aéT"))) {
		t.Error("a match across a read that cut a rune was missed")
	}
}
