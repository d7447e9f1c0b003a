package frontend

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestIMAPFoldLongMarkRun: a letter with more combining marks after it
// than fit the room first made for the output is folded in full, as the
// whole-text reference folds it, and in bounded time: the transformers
// hold back such a segment until all of it fits, so the output must
// grow past the room it already has (growing by what input was left,
// none, spun for ever on the key or header value that held it).
func TestIMAPFoldLongMarkRun(t *testing.T) {
	for _, s := range []string{
		"a" + strings.Repeat("\u0344", 12),
		"Zo" + strings.Repeat("\u0301\u0327", 20) + " x",
		strings.Repeat("e"+strings.Repeat("\u0344", 40), 3),
	} {
		done := make(chan []byte, 1)
		go func() { done <- imapFold(nil, []byte(s)) }()
		select {
		case got := <-done:
			if want := refFold([]byte(s)); !bytes.Equal(got, want) {
				t.Errorf("fold %q = %q, want %q", s, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("fold %q did not end", s)
		}
	}
}

// imapChunkReader hands out its text in reads of 1 to 40 octets drawn
// from rng, as a decoder might.
type imapChunkReader struct {
	b   []byte
	rng *rand.Rand
}

func (c *imapChunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := min(1+c.rng.IntN(min(len(p), 40)), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

// TestIMAPFoldMatchesWholeText: folding run by run (memo, rune table,
// segments of long runs, the ASCII letter before a run) and the
// streaming matcher, whatever its reads, agree with folding the whole
// text (refFold), for text of letters that fold to several, marks that
// compose after folding, Hangul jamo, Indic vowel signs that compose
// with a starter, long expansions and invalid octets. The read buffer
// is small, but never so small that a full one holds no boundary.
func TestIMAPFoldMatchesWholeText(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 9))
	alphabet := []string{"a", "E", "e", "é", "\u0301", "\u0327", "\u0345", "\u0130", "\ufdfa",
		"\u1100", "\u1161", "\u11a8", "\uac00", "\uac01", "\u0dd9", "\u0dcf", "\u0dca", "\xe2\x82",
		"\xc3", "\xff", "\x80", " ", "ß", "ﬁ", "\u2126", "K", "\u212a", "\u0b47", "\u0b3e", "\u0344",
		"\u0f73", "\u1e9e", "\u03a3", "I\u0307", "\u1f80", "\u0399", "\u0308", "日", "\u3099",
		"\u304b", "\uff76", "\uff9e", "\u2460", "\u00bd"}
	for i := range 4000 {
		var sb strings.Builder
		for range rng.IntN(120) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := []byte(sb.String())
		want := refFold(s)
		f := newIMAPFolder()
		for pass := range 2 { // cold, then from the memo
			if got := f.fold(nil, s); !bytes.Equal(got, want) {
				t.Fatalf("case %d pass %d: fold %q = %q, want %q", i, pass, s, got, want)
			}
		}
		a := rng.IntN(len(s) + 1)
		needle := s[a : a+rng.IntN(len(s)-a+1)]
		if rng.IntN(3) == 0 {
			needle = []byte(alphabet[rng.IntN(len(alphabet))] + alphabet[rng.IntN(len(alphabet))])
		}
		low := imapFold(nil, needle)
		if len(low) == 0 {
			continue
		}
		wantIn := bytes.Contains(want, refFold(needle))
		nd := &imapNeedle{low: low, raw: make([]byte, 64+rng.IntN(40))}
		if got := nd.contains(&imapChunkReader{b: s, rng: rng}); got != wantIn {
			t.Fatalf("case %d: %q in %q (buffer %d): %v, want %v", i, needle, s, len(nd.raw), got, wantIn)
		}
	}
}

// TestIMAPFoldMemoBound: the memo of one folder stays within
// imapFoldMemoBytes of segments and their forms however much text of
// distinct short runs it folds, even runs of ligatures that expand
// tenfold (U+FDFA is 18 letters).
func TestIMAPFoldMemoBound(t *testing.T) {
	var sb strings.Builder
	for k := range 4096 {
		sb.WriteByte("abcd"[k%4])
		for j := range 10 {
			if k>>(2+j)&1 == 1 {
				sb.WriteString("\ufdfa")
			} else {
				sb.WriteString("\ufdfb")
			}
		}
		sb.WriteByte(' ')
	}
	f := newIMAPFolder()
	f.fold(nil, []byte(sb.String()))
	size := 0
	for k, v := range f.memo {
		size += len(k) + len(v)
	}
	if size > imapFoldMemoBytes {
		t.Errorf("memo holds %d octets in %d segments, bound %d", size, len(f.memo), imapFoldMemoBytes)
	}
}
