package frontend

import (
	"math/rand/v2"
	"testing"

	"github.com/emersion/go-imap/v2/imapserver"
)

// TestIMAPMatchListAgreesWithLibrary: our LIST matcher answers as
// go-imap's MatchList does (same reference rules, "*" and "%"), on short
// random names, references and patterns, where the library's cost does
// not matter.
func TestIMAPMatchListAgreesWithLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	word := func(alphabet string, most int) string {
		b := make([]byte, r.IntN(most+1))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 200000 {
		name, ref, pattern := word("ab/", 8), word("ab/", 3), word("ab/*%", 7)
		if got, want := imapMatchList(name, ref, pattern), imapserver.MatchList(name, imapDelim, ref, pattern); got != want {
			t.Fatalf("name %q ref %q pattern %q: %v, go-imap says %v", name, ref, pattern, got, want)
		}
	}
}
