package frontend

import (
	"slices"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// SEARCH compares text case-insensitively in the spirit of RFC 5051's
// i;unicode-casemap (the comparator RFC 9051 section 6.4.4 names): both
// the key and the message text are brought into one form and then
// compared octet by octet. The form is compatibility composition
// (NFKC), full case folding, and NFKC again: "café" typed precomposed
// finds "café" sent decomposed (as macOS writes it), "GRÜSSE" finds
// "Grüße", "ﬁle" finds "file", and "Ω" (the ohm sign) finds "ω".
// RFC 5051 decomposes, and its simple titlecase mappings leave "ß" apart
// from "ss"; composing keeps a key's last letter from matching the
// start of an accented one ("cafe" would find "café" decomposed), and
// full folding is what users expect.
//
// ASCII, most of mail, takes a byte-at-a-time path that only maps A-Z.
// A run of other octets goes through the transformers together with
// the ASCII letter before it (a combining mark composes with it); an
// octet that is not UTF-8 becomes U+FFFD, one per octet, so the form
// of a text does not depend on where a read cut it.

// imapFolder brings text into the form SEARCH compares. Its transformer
// keeps state between calls, so one folder serves one goroutine; a
// SEARCH holds one per needle (imapNeedle).
type imapFolder struct {
	t    transform.Transformer
	buf  []byte            // a run of non-ASCII octets made valid UTF-8
	memo map[string]string // segments folded: mail repeats its few letters
	// memoBytes is what memo's keys and values take.
	memoBytes int
	one       *[imapFoldRunes]imapFoldedRune
}

// imapFoldedRune is a segment of one rune and what it folds to, in a
// table indexed by the rune's low bits: Chinese or Japanese text is
// thousands of such segments, and a table lookup costs a fraction of a
// map's.
type imapFoldedRune struct {
	r   rune // 0: empty (NUL is ASCII, never in a run)
	out string
}

const imapFoldRunes = 1024

// A folder remembers how it folded segments (a rune that starts one
// and the combining marks after it) of up to imapFoldMemoSeg octets, at
// most imapFoldMemoSegs of them taking at most imapFoldMemoBytes with
// their forms (a count alone let runs of ligatures that expand tenfold
// take megabytes), so that a SEARCH does not run the transformers for every
// letter: mail in one language uses few letters. Without it a SEARCH
// through French mail took five times, and through Japanese ten times,
// as long as plain lower-casing.
const (
	imapFoldMemoSeg   = 32
	imapFoldMemoSegs  = 4096
	imapFoldMemoBytes = 128 << 10
)

// newIMAPFolder returns a folder; its transformers (several KiB of
// buffers) are made when text first needs them, so folding ASCII (most
// header values) allocates nothing.
func newIMAPFolder() *imapFolder {
	return &imapFolder{}
}

// imapFold appends s folded to dst, with a folder of its own: for a key
// or a header value now and then, where a transformer's allocation is
// nothing next to the rest.
func imapFold(dst, s []byte) []byte {
	return newIMAPFolder().fold(dst, s)
}

// fold appends s folded to dst, without allocating when s is ASCII and
// dst has room.
func (f *imapFolder) fold(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		j := i + 1
		for j < len(s) && s[j] >= utf8.RuneSelf {
			j++
		}
		if i > 0 {
			// The ASCII octet before the run, folded above, goes in
			// again with it: a mark may compose with it.
			i--
			dst = dst[:len(dst)-1]
		}
		dst = f.foldRun(dst, s[i:j])
		i = j
	}
	return dst
}

// foldRun folds a run of non-ASCII octets, perhaps after one ASCII
// octet, segment by segment: a segment starts at each rune that begins
// a new one for normalisation (it cannot combine with what is before
// it), so folding the segments apart gives what folding the run whole
// would (case folding maps each rune on its own). What a segment folds
// to depends on its octets alone, so it is remembered; a short run
// (an accented letter between ASCII ones, as in most European text) is
// remembered whole.
func (f *imapFolder) foldRun(dst, run []byte) []byte {
	if len(run) <= imapFoldMemoSeg {
		return f.foldSegment(dst, run)
	}
	seg := 0
	for i := 0; i < len(run); {
		p := norm.NFKC.Properties(run[i:])
		n := p.Size()
		if n == 0 { // not UTF-8: one octet, which becomes U+FFFD
			n = 1
		}
		if i > seg && (p.BoundaryBefore() || n == 1 && run[i] >= utf8.RuneSelf) {
			dst = f.foldSegment(dst, run[seg:i])
			seg = i
		}
		i += n
	}
	return f.foldSegment(dst, run[seg:])
}

// foldSegment folds one segment or short run, from the memo when it
// can.
func (f *imapFolder) foldSegment(dst, seg []byte) []byte {
	if r, n := utf8.DecodeRune(seg); n == len(seg) && n > 1 {
		return f.foldRune(dst, seg, r)
	}
	if len(seg) > imapFoldMemoSeg {
		return f.transform(dst, seg)
	}
	if out, ok := f.memo[string(seg)]; ok {
		return append(dst, out...)
	}
	at := len(dst)
	dst = f.transform(dst, seg)
	if f.memo == nil {
		f.memo = make(map[string]string)
	}
	if n := len(seg) + len(dst) - at; len(f.memo) < imapFoldMemoSegs && f.memoBytes+n <= imapFoldMemoBytes {
		f.memo[string(seg)] = string(dst[at:])
		f.memoBytes += n
	}
	return dst
}

// foldRune folds a segment of the one rune r, from the table when it
// can.
func (f *imapFolder) foldRune(dst, seg []byte, r rune) []byte {
	if f.one == nil {
		f.one = new([imapFoldRunes]imapFoldedRune)
	}
	e := &f.one[r%imapFoldRunes]
	if e.r == r {
		return append(dst, e.out...)
	}
	at := len(dst)
	dst = f.transform(dst, seg)
	*e = imapFoldedRune{r: r, out: string(dst[at:])}
	return dst
}

// transform folds run with the transformers.
func (f *imapFolder) transform(dst, run []byte) []byte {
	f.buf = f.buf[:0]
	for i := 0; i < len(run); {
		r, n := utf8.DecodeRune(run[i:])
		f.buf = utf8.AppendRune(f.buf, r) // an invalid octet: U+FFFD
		i += n
	}
	src := f.buf
	if f.t == nil {
		f.t = transform.Chain(norm.NFKC, cases.Fold(), norm.NFKC)
	}
	f.t.Reset()
	for {
		nDst, nSrc, err := f.t.Transform(dst[len(dst):cap(dst)], src, true)
		dst, src = dst[:len(dst)+nDst], src[nSrc:]
		if err != transform.ErrShortDst {
			// nil, or an error no input of valid UTF-8 gives: what
			// is left is dropped rather than compared unfolded.
			return dst
		}
		// The transformers may hold back a whole segment (a letter
		// and its combining marks) until it fits, having taken all
		// of src already: the room must grow past what it was, not
		// only by what is left of src.
		dst = slices.Grow(dst, 2*(cap(dst)-len(dst))+2*len(src)+32)
	}
}

// imapFoldCut is where a read of b may be cut so that folding the two
// parts gives what folding b whole would: before the last rune that
// begins a segment (norm's BoundaryBefore: nothing before it combines
// with it), or an octet that is not UTF-8 (U+FFFD); 0, all of b kept
// for the next read, when there is none among its last
// imapFoldCutRunes runes. norm's LastBoundary will not do: it takes the
// end of b for a boundary after a letter that composes with nothing
// ("ß"), which folding makes one that does ("ss", and "s" with a
// cedilla is "ş"). Only when b fills the whole read buffer (full) and
// holds no boundary (nothing but combining marks) is it cut after its
// last whole rune, where such marks' order and composition can differ.
func imapFoldCut(b []byte, full bool) int {
	end := imapRuneCut(b)
	for i, runes := end, 0; i > 0 && runes < imapFoldCutRunes; runes++ {
		r, n := utf8.DecodeLastRune(b[:i])
		i -= n
		if i > 0 && (r == utf8.RuneError && n == 1 || norm.NFKC.Properties(b[i:end]).BoundaryBefore()) {
			return i
		}
	}
	if !full {
		return 0
	}
	return end
}

// imapFoldCutRunes is how far back imapFoldCut looks for a boundary:
// past the 30 combining marks after which norm starts a new segment of
// its own accord.
const imapFoldCutRunes = 64
