package frontend

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// The streaming read path (imap_section.go, imap_mime.go, imap_header.go,
// imap_search.go) replaced go-imap's and go-message's in-memory helpers.
// For a well-formed message every octet must stay what those helpers
// gave, except where they were wrong (BINARY converting charsets, a
// decoding error emptying a whole section, the default type of a digest
// part, and of the header of a message inside one) or where the new code differs on purpose (frontend/DESIGN.md:
// headers over 256 KiB, malformed header lines). These tests compare the
// two on a corpus and under the fuzzer, on messages where neither
// exception applies.

// diffCorpus is written with "\n"; every message is tried with CRLF and
// with bare LF line ends. A "/noclose" message lacks its final
// delimiter (see TestIMAPDiffMissingCloseDelimiter).
var diffCorpus = []struct{ name, msg string }{
	{"plain", "From: A <a@example.org>\nTo: b@example.org\nSubject: =?utf-8?q?caf=C3=A9?= plain\n" +
		"Subject-8bit: naïve 8-bit ünïcode\nX-Folded: one\n two\n\tthree\nDate: Mon, 7 Dec 2026 10:00:00 +0000\n" +
		"Content-Type: text/plain; charset=utf-8\n\nHello world\nsecond line with Needle\n"},
	{"plain-noeol", "Subject: no final newline\n\nbody without newline"},
	{"header-only", "Subject: header only\nX-A: 1\n"},
	{"empty-header", "\nbody of a message without a header\n"},
	{"plain-base64", "Subject: b64\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n" +
		wrap64("The quick brown fox jumps over the lazy dog; base64 at the top level.") + "\n"},
	{"mixed", "From: a@example.org\nSubject: mixed\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\n\n" +
		"This is the preamble.\n--bX is not a delimiter\n\n" +
		"--b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n" +
		"caf=C3=A9 soft=\nbreak and a long line =3D equals\n--b1 not a delimiter either\n x--b\n" +
		"--b \t\nContent-Type: application/octet-stream; name=\"a.bin\"\nContent-Transfer-Encoding: base64\n" +
		"Content-Disposition: attachment; filename=\"a.bin\"\nContent-Language: en, de\nContent-ID: <id1@example.org>\n" +
		"Content-Description: a file\nContent-Location: http://example.org/a\n\n" +
		wrap64(strings.Repeat("binary\x00\x01\xff data ", 20)) + "\n" +
		"--b\n\n" + // an empty part: no header, no body
		"--b\n\nA part without a header is text/plain.\n" +
		"--b\nContent-Type: text/html\n\n<p>html</p>\n\n" +
		"--b--\nThis is the epilogue.\n--b\nstill epilogue\n"},
	{"nested", "Subject: nested\nContent-Type: multipart/mixed; boundary=outer\n\n" +
		"--outer\nContent-Type: multipart/alternative; boundary=\"alt\"\n\n" +
		"--alt\nContent-Type: text/plain\n\nplain alternative\n" +
		"--alt\nContent-Type: multipart/related; boundary=rel\n\n" +
		"--rel\nContent-Type: text/html; charset=utf-8\n\n<b>related html</b>\n" +
		"--rel\nContent-Type: multipart/mixed; boundary=deep\n\npreamble of deep\n" +
		"--deep\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" + wrap64("deep base64 text, four levels down") + "\n" +
		"--deep\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\ndeep =E2=82=AC qp\n" +
		"--deep--\n" +
		"--rel--\n" +
		"--alt--\n" +
		"--outer\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n" + wrap64("\x89PNG\r\n\x1a\nnot really a png") + "\n" +
		"--outer--\n"},
	{"rfc822", "Subject: forward\nContent-Type: multipart/mixed; boundary=f\n\n" +
		"--f\nContent-Type: text/plain\n\nsee attached\n" +
		"--f\nContent-Type: message/rfc822\nContent-Disposition: inline\n\n" +
		"From: Inner <inner@example.org>\nTo: x@example.org, Y <y@example.org>\nSubject: inner simple\n" +
		"Message-Id: <inner@example.org>\n\ninner body line\ninner line two\n" +
		"--f\nContent-Type: message/rfc822\n\n" +
		"Subject: inner with parts\nContent-Type: multipart/mixed; boundary=g\n\n" +
		"--g\nContent-Type: text/plain\n\ninner part one\n" +
		"--g\nContent-Type: message/rfc822\n\nSubject: innermost\n\ninnermost body\n" +
		"--g\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" + wrap64("%PDF-1.4 fake") + "\n" +
		"--g--\n" +
		"--f--\n"},
	{"top-rfc822", "Subject: top is a message\nContent-Type: message/rfc822\n\n" +
		"Subject: encapsulated\nContent-Type: multipart/mixed; boundary=z\n\n--z\n\none\n--z\n\ntwo\n--z--\n"},
	{"digest", "Subject: digest\nContent-Type: multipart/digest; boundary=d\n\n" +
		"--d\n\nSubject: digest one\nFrom: one@example.org\n\nfirst digested\n" +
		"--d\nContent-Type: text/plain\n\nan explicit text part\n" +
		"--d\n\nSubject: digest three\nContent-Type: multipart/mixed; boundary=e\n\n--e\n\nthree.one\n--e\n\nthree.two\n--e--\n" +
		"--d--\n"},
	{"charsets", "Subject: =?ISO-8859-15?Q?caf=E9_=A4?= =?KOI8-R?B?8NLJ18XU?=\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=cs\n\n" +
		"--cs\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nGr=FC=DFe, caf=E9 =80\n" +
		"--cs\nContent-Type: text/plain; charset=koi8-r\nContent-Transfer-Encoding: base64\n\n" + wrap64("\xf0\xd2\xc9\xd7\xc5\xd4 \xc9\xda \xed\xcf\xd3\xcb\xd7\xd9") + "\n" +
		"--cs\nContent-Type: text/plain; charset=iso-2022-jp\n\n\x1b$B$3$s$K$A$O@$3&\x1b(B\n" +
		"--cs\nContent-Type: text/plain; charset=x-unknown\n\nraw na\xc3\xafve\n" +
		"--cs--\n"},
	{"noclose/mixed", "Subject: cut\nContent-Type: multipart/mixed; boundary=c\n\n" +
		"--c\nContent-Type: text/plain\n\nfirst\n--c\nContent-Type: text/plain\n\nlast part, never closed\n"},
}

// wrap64 is s in base64, in lines of 76 characters (RFC 2045 section 6.8).
func wrap64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var lines []string
	for len(enc) > 76 {
		lines = append(lines, enc[:76])
		enc = enc[76:]
	}
	return strings.Join(append(lines, enc), "\n")
}

// diffMessages is the corpus with CRLF and with bare LF line ends.
func diffMessages() []struct{ name, msg string } {
	var out []struct{ name, msg string }
	for _, c := range diffCorpus {
		out = append(out,
			struct{ name, msg string }{c.name + "/crlf", strings.ReplaceAll(c.msg, "\n", "\r\n")},
			struct{ name, msg string }{c.name + "/lf", c.msg})
	}
	return out
}

// diffPaths lists every part path of bs (the parts BODYSTRUCTURE
// describes, whose numbers a client sends), plus the whole message.
func diffPaths(bs imap.BodyStructure, prefix []int, out [][]int) [][]int {
	switch b := bs.(type) {
	case *imap.BodyStructureMultiPart:
		for i, c := range b.Children {
			p := append(append([]int(nil), prefix...), i+1)
			out = append(out, p)
			out = diffPaths(c, p, out)
		}
	case *imap.BodyStructureSinglePart:
		if b.MessageRFC822 != nil {
			if _, ok := b.MessageRFC822.BodyStructure.(*imap.BodyStructureMultiPart); ok {
				out = diffPaths(b.MessageRFC822.BodyStructure, prefix, out)
			} else {
				out = append(out, append(append([]int(nil), prefix...), 1))
			}
		}
	}
	return out
}

// diffSpec is a section to compare; windows says whether to try it in
// every <partial> window too (the windows are cut the same way for
// every section, so the parts that exist are enough for them).
type diffSpec struct {
	bs      *imap.FetchItemBodySection
	windows bool
}

// diffSpecs is every section a client can ask of a message whose parts
// are paths: each part whole, its HEADER, TEXT, MIME and header fields,
// parts that do not exist, and the top-level specifiers.
func diffSpecs(paths [][]int) []diffSpec {
	type path struct {
		p      []int
		exists bool
	}
	all := []path{{nil, true}, {[]int{1}, true}, {[]int{0}, false}, {[]int{99}, false}, {[]int{1, 99}, false}, {[]int{2, 1, 1, 1}, false}}
	for _, p := range paths {
		all = append(all, path{p, true}, path{append(append([]int(nil), p...), 1), false}, path{append(append([]int(nil), p...), 7), false})
	}
	fields := []string{"Subject", "content-type", "X-Absent"}
	var out []diffSpec
	for _, p := range all {
		out = append(out,
			diffSpec{&imap.FetchItemBodySection{Part: p.p}, p.exists},
			diffSpec{&imap.FetchItemBodySection{Part: p.p, Specifier: imap.PartSpecifierHeader}, p.exists},
			diffSpec{&imap.FetchItemBodySection{Part: p.p, Specifier: imap.PartSpecifierText}, p.exists},
			diffSpec{&imap.FetchItemBodySection{Part: p.p, Specifier: imap.PartSpecifierHeader, HeaderFields: fields}, false},
			diffSpec{&imap.FetchItemBodySection{Part: p.p, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: fields}, false})
		if len(p.p) > 0 { // BODY[MIME] is BAD (imapCheckSections)
			out = append(out, diffSpec{&imap.FetchItemBodySection{Part: p.p, Specifier: imap.PartSpecifierMIME}, p.exists})
		}
	}
	return out
}

// diffPartials are the <partial> windows tried on a section of n octets:
// inside, across the end, at the end and past it (RFC 9051 section
// 6.4.5: a window past the end is an empty string).
func diffPartials(n int64) []*imap.SectionPartial {
	if n == 0 {
		return []*imap.SectionPartial{nil, {Offset: 0, Size: 1}, {Offset: 2, Size: 1}}
	}
	return []*imap.SectionPartial{nil, {Offset: 0, Size: 1}, {Offset: 3, Size: 7},
		{Offset: n - 1, Size: 5}, {Offset: n, Size: 3}, {Offset: n + 5, Size: 2}, {Offset: 1, Size: 1 << 40}}
}

// diffRandomPartial is the fuzzer's diffPartials: the whole section and
// one window drawn from rng, inside, across the end or past it. Every
// window costs two more parses of the message, and windows are cut the
// same way whatever the message (TestIMAPDiffSectionsMatchOldHelpers
// tries all of diffPartials on the corpus).
func diffRandomPartial(rng *rand.Rand) func(n int64) []*imap.SectionPartial {
	return func(n int64) []*imap.SectionPartial {
		return []*imap.SectionPartial{nil, {Offset: rng.Int64N(n + 3), Size: 1 + rng.Int64N(n+3)}}
	}
}

// diffNewSection cuts a section as FETCH does: a first pass measures it,
// then a second pass per window writes that window, whose length must
// be what the first pass promised.
func diffNewSection(t testing.TB, msg []byte, sp imapSectionSpec, partials ...*imap.SectionPartial) ([][]byte, error) {
	t.Helper()
	count := imapNewWindow(nil, nil)
	if err := imapWriteSection(count, bytes.NewReader(msg), sp); err != nil {
		return nil, err
	}
	var out [][]byte
	for _, p := range partials {
		var buf bytes.Buffer
		win := imapNewWindow(&buf, p)
		if err := imapWriteSection(win, bytes.NewReader(msg), sp); err != nil {
			t.Fatalf("second pass of %+v failed: %v", sp, err)
		}
		if want := imapWindowLen(count.total, p); win.sent != want || int64(buf.Len()) != want {
			t.Fatalf("section %+v window %+v: sent %d (%d written), measured %d", sp, p, win.sent, buf.Len(), want)
		}
		out = append(out, buf.Bytes())
	}
	return out, nil
}

// diffCompareSections compares every BODY section of msg, in every
// window that windows gives (diffPartials), with go-imap's
// ExtractBodySection (diffRefSection). digests are the paths of
// diffDigestMessages.
func diffCompareSections(t testing.TB, name string, msg []byte, paths, digests [][]int, windows func(n int64) []*imap.SectionPartial) {
	t.Helper()
	for _, spec := range diffSpecs(paths) {
		bs := spec.bs
		whole := diffRefSection(msg, bs, digests)
		partials := []*imap.SectionPartial{nil}
		if spec.windows {
			partials = windows(int64(len(whole)))
		}
		got, err := diffNewSection(t, msg, imapBodySpec(bs), partials...)
		if err != nil {
			t.Fatalf("%s: BODY[%s]: %v", name, diffSpecName(bs), err)
		}
		for k, p := range partials {
			bs := *bs
			bs.Partial = p
			want := whole
			if p != nil {
				want = diffRefSection(msg, &bs, digests)
			}
			if !bytes.Equal(got[k], want) {
				t.Fatalf("%s: BODY[%s:\n got %q\nwant %q\nmessage %q", name, diffSpecName(&bs), got[k], want, msg)
			}
		}
	}
}

// diffRefSection is go-imap's ExtractBodySection of bs, except below a
// message that is a part of a multipart/digest and is not multipart
// itself (digests, from diffDigestMessages): there go-imap keeps the
// digest as the parent, and so reads the message's body as yet another
// message, when the digest's default of message/rfc822 (RFC 2046
// section 5.1.5) is for its own parts only. There the section is cut
// from the message's own octets (TestIMAPDigestMessageSections). And a
// header section of a message that is all header (no blank line, no
// body) has no blank line, which go-imap adds (RFC 9051 section 6.4.5;
// TestIMAPHeaderOfMessageWithoutBlankLine).
func diffRefSection(msg []byte, bs *imap.FetchItemBodySection, digests [][]int) []byte {
	if bs.Specifier != imap.PartSpecifierHeader {
		return diffRefSectionOf(msg, bs, digests)
	}
	whole := *bs
	whole.Partial = nil
	out := diffRefSectionOf(msg, &whole, digests)
	inner, body := msg, false // the message whose header it is
	if len(bs.Part) > 0 {
		if !diffIsMessagePart(msg, bs.Part) {
			// HEADER of a part that is no message keeps its blank
			// line (the RFC's exception is for messages).
			return imapPartial(out, bs.Partial)
		}
		inner = diffRefSectionOf(msg, &imap.FetchItemBodySection{Part: bs.Part}, digests)
		text := diffRefSectionOf(msg, &imap.FetchItemBodySection{Part: bs.Part, Specifier: imap.PartSpecifierText}, digests)
		body = len(text) > 0 // the part is no message, or one with a body
	}
	if !body && diffNoBlankLine(inner) {
		out = bytes.TrimSuffix(out, []byte("\r\n"))
	}
	return imapPartial(out, bs.Partial)
}

// diffIsMessagePart reports whether part of msg is an attached message
// (message/rfc822 or message/global, or a part of a multipart/digest
// without a Content-Type), as go-imap's BODYSTRUCTURE describes it.
func diffIsMessagePart(msg []byte, part []int) bool {
	cur := imapserver.ExtractBodyStructure(bytes.NewReader(msg))
	for i, n := range part {
		if s, ok := cur.(*imap.BodyStructureSinglePart); ok && s.MessageRFC822 != nil && i > 0 {
			cur = s.MessageRFC822.BodyStructure // into the attached message
		}
		switch s := cur.(type) {
		case *imap.BodyStructureMultiPart:
			if n < 1 || n > len(s.Children) {
				return false
			}
			cur = s.Children[n-1]
		default:
			if n != 1 { // a single part has part 1 only: itself
				return false
			}
		}
	}
	s, ok := cur.(*imap.BodyStructureSinglePart)
	return ok && s.MessageRFC822 != nil && len(part) > 0
}

// diffNoBlankLine reports a message that is all header: no empty line.
func diffNoBlankLine(msg []byte) bool {
	return !bytes.HasPrefix(msg, []byte("\n")) && !bytes.HasPrefix(msg, []byte("\r\n")) &&
		!bytes.Contains(msg, []byte("\n\n")) && !bytes.Contains(msg, []byte("\n\r\n"))
}

func diffRefSectionOf(msg []byte, bs *imap.FetchItemBodySection, digests [][]int) []byte {
	for _, d := range digests {
		if len(bs.Part) > len(d) && slices.Equal(bs.Part[:len(d)], d) {
			inner := imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Part: d})
			sub := *bs
			sub.Part = bs.Part[len(d):]
			return imapserver.ExtractBodySection(bytes.NewReader(inner), &sub)
		}
	}
	return imapserver.ExtractBodySection(bytes.NewReader(msg), bs)
}

// diffDigestMessages lists the paths of the parts of a multipart/digest
// in bs that are messages without parts (diffRefSection), numbered as
// diffCompareDigestParts numbers them.
func diffDigestMessages(bs imap.BodyStructure, path []int, out [][]int) [][]int {
	if sp, single := bs.(*imap.BodyStructureSinglePart); single && sp.MessageRFC822 != nil {
		if len(path) == 0 {
			path = []int{1}
		}
		return diffDigestMessages(sp.MessageRFC822.BodyStructure, path, out)
	}
	mp, ok := bs.(*imap.BodyStructureMultiPart)
	if !ok {
		return out
	}
	for i, c := range mp.Children {
		p := append(append([]int(nil), path...), i+1)
		if sp, ok := c.(*imap.BodyStructureSinglePart); ok && mp.Subtype == "digest" && sp.MessageRFC822 != nil {
			if _, multi := sp.MessageRFC822.BodyStructure.(*imap.BodyStructureMultiPart); !multi {
				out = append(out, p)
			}
		}
		out = diffDigestMessages(c, p, out)
	}
	return out
}

// diffCompareBinary compares BINARY[part] with go-imap's
// ExtractBinarySection where that was right: a text part in a charset
// other than UTF-8 or US-ASCII was converted (or, without a charset
// table, emptied) by the old helper, and one that does not decode
// cleanly was emptied whole; RFC 3516 section 4.2 wants the decoded
// octets in the part's own charset. windows is as for
// diffCompareSections.
func diffCompareBinary(t testing.TB, name string, msg []byte, paths [][]int, windows func(n int64) []*imap.SectionPartial) {
	t.Helper()
	for _, part := range append([][]int{nil, {1}, {99}}, paths...) {
		hdr := diffPartHeader(msg, part)
		if hdr == nil {
			continue // no such part, or the part is an attached message's
		}
		mh := gomessage.Header{Header: *hdr}
		ct, params, _ := mh.ContentType()
		if cs := strings.ToLower(params["charset"]); strings.HasPrefix(ct, "text/") && cs != "" && cs != "utf-8" && cs != "us-ascii" {
			continue
		}
		whole := imapserver.ExtractBinarySection(bytes.NewReader(msg), &imap.FetchItemBinarySection{Part: part})
		partials := windows(int64(len(whole)))
		got, err := diffNewSection(t, msg, imapBinarySpec(part), partials...)
		if err != nil {
			if whole != nil {
				t.Fatalf("%s: BINARY[%v]: %v, old helper gave %q", name, part, err, whole)
			}
			continue // an encoding we do not know: NO [UNKNOWN-CTE]
		}
		if len(whole) == 0 && len(got[0]) > 0 {
			if e, err := gomessage.New(mh, diffPartBody(msg, part)); err != nil || diffReadErr(e.Body) != nil {
				continue // the old helper emptied a section that does not decode cleanly
			}
		}
		for k, p := range partials {
			want := whole
			if p != nil {
				want = imapserver.ExtractBinarySection(bytes.NewReader(msg), &imap.FetchItemBinarySection{Part: part, Partial: p})
			}
			if !bytes.Equal(got[k], want) {
				t.Fatalf("%s: BINARY[%v]%v:\n got %q\nwant %q\nmessage %q", name, part, p, got[k], want, msg)
			}
		}
	}
}

func diffReadErr(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// diffPartHeader is the MIME header of a part (for BINARY: the top-level
// header for the empty path), as go-imap finds it; nil for a part that
// does not exist.
func diffPartHeader(msg []byte, part []int) *textproto.Header {
	spec := &imap.FetchItemBodySection{Part: part, Specifier: imap.PartSpecifierMIME}
	if len(part) == 0 {
		spec.Specifier = imap.PartSpecifierHeader
	}
	raw := imapserver.ExtractBodySection(bytes.NewReader(msg), spec)
	if raw == nil {
		return nil
	}
	h, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		return nil
	}
	return &h
}

// diffPartBody is the raw body of a part, as go-imap finds it.
func diffPartBody(msg []byte, part []int) io.Reader {
	if len(part) == 0 {
		return bytes.NewReader(imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText}))
	}
	return bytes.NewReader(imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Part: part}))
}

func diffSpecName(bs *imap.FetchItemBodySection) string {
	var b strings.Builder
	for i, n := range bs.Part {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprint(&b, n)
	}
	if bs.Specifier != imap.PartSpecifierNone {
		if len(bs.Part) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(string(bs.Specifier))
		if len(bs.HeaderFields) > 0 {
			fmt.Fprintf(&b, ".FIELDS %v", bs.HeaderFields)
		}
		if len(bs.HeaderFieldsNot) > 0 {
			fmt.Fprintf(&b, ".FIELDS.NOT %v", bs.HeaderFieldsNot)
		}
	}
	if bs.Partial != nil {
		fmt.Fprintf(&b, "]<%d.%d>", bs.Partial.Offset, bs.Partial.Size)
	}
	return b.String()
}

// diffCompareStructure compares BODYSTRUCTURE with go-imap's
// ExtractBodyStructure, except that a part without a Content-Type in a
// multipart/digest is message/rfc822 (RFC 2046 section 5.1.5), not the
// text/plain the old helper said.
func diffCompareStructure(t testing.TB, name string, msg []byte) imap.BodyStructure {
	t.Helper()
	got := imapBodyStructure(bytes.NewReader(msg))
	want := imapserver.ExtractBodyStructure(bytes.NewReader(msg))
	if err := diffSameStructure(got, want, ""); err != nil {
		t.Fatalf("%s: BODYSTRUCTURE %v\nmessage %q", name, err, msg)
	}
	return got
}

// diffCompareDigestParts compares what BODYSTRUCTURE says inside each
// digest part without a Content-Type with what the old helpers say of
// that part's octets (BODY[n], which they did cut as a message).
func diffCompareDigestParts(t testing.TB, name string, msg []byte, bs imap.BodyStructure, path []int) {
	t.Helper()
	mp, ok := bs.(*imap.BodyStructureMultiPart)
	if sp, single := bs.(*imap.BodyStructureSinglePart); single && sp.MessageRFC822 != nil {
		if len(path) == 0 {
			path = []int{1}
		}
		diffCompareDigestParts(t, name, msg, sp.MessageRFC822.BodyStructure, path)
		return
	}
	if !ok {
		return
	}
	for i, c := range mp.Children {
		p := append(append([]int(nil), path...), i+1)
		if sp, ok := c.(*imap.BodyStructureSinglePart); ok && mp.Subtype == "digest" && sp.MessageRFC822 != nil && sp.Params == nil {
			raw := imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Part: p})
			hdr := imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Part: p, Specifier: imap.PartSpecifierHeader})
			h, _ := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(hdr)))
			m := sp.MessageRFC822
			if int(sp.Size) != len(raw) || m.NumLines != int64(bytes.Count(raw, []byte("\n"))) || !diffSameEnvelope(m.Envelope, imapserver.ExtractEnvelope(h)) {
				t.Fatalf("%s: digest part %v: %d octets, %d lines, %+v; BODY[%v] is %q", name, p, sp.Size, m.NumLines, m.Envelope, p, raw)
			}
			if err := diffSameStructure(m.BodyStructure, imapserver.ExtractBodyStructure(bytes.NewReader(raw)), ""); err != nil {
				t.Fatalf("%s: digest part %v: %v", name, p, err)
			}
		}
		diffCompareDigestParts(t, name, msg, c, p)
	}
}

func diffSameStructure(got, want imap.BodyStructure, parent string) error {
	switch w := want.(type) {
	case *imap.BodyStructureMultiPart:
		g, ok := got.(*imap.BodyStructureMultiPart)
		if !ok {
			return fmt.Errorf("got %#v, want a multipart", got)
		}
		if g.Subtype != w.Subtype || len(g.Children) != len(w.Children) || !reflect.DeepEqual(g.Extended, diffTextMultiExt(w.Extended)) {
			return fmt.Errorf("got multipart/%s of %d parts %+v, want multipart/%s of %d %+v",
				g.Subtype, len(g.Children), g.Extended, w.Subtype, len(w.Children), w.Extended)
		}
		for i := range w.Children {
			if err := diffSameStructure(g.Children[i], w.Children[i], "multipart/"+w.Subtype); err != nil {
				return fmt.Errorf("part %d: %w", i+1, err)
			}
		}
		return nil
	case *imap.BodyStructureSinglePart:
		g, ok := got.(*imap.BodyStructureSinglePart)
		if !ok {
			return fmt.Errorf("got %#v, want a single part", got)
		}
		w2 := diffTextPart(*w)
		if parent == "multipart/digest" && w2.Type == "text" && w2.Subtype == "plain" && w2.Params == nil {
			// A digest's part without a Content-Type (go-message gives
			// text/plain and no parameters only then) is a message
			// (RFC 2046 section 5.1.5), as the old helpers' own
			// section paths took it; their BODYSTRUCTURE did not.
			if g.Type != "message" || g.Subtype != "rfc822" || g.MessageRFC822 == nil || g.Text != nil {
				return fmt.Errorf("a digest's part without a type is %s/%s, want message/rfc822", g.Type, g.Subtype)
			}
			return nil // its inside: diffCompareDigestParts
		}
		gm, wm := g.MessageRFC822, w2.MessageRFC822
		g2 := *g
		g2.MessageRFC822, w2.MessageRFC822 = nil, nil
		if !reflect.DeepEqual(&g2, &w2) {
			return fmt.Errorf("got %+v %+v %+v, want %+v %+v %+v", g2, g2.Text, g2.Extended, w2, w2.Text, w2.Extended)
		}
		if (gm == nil) != (wm == nil) {
			return fmt.Errorf("message/rfc822 described as %v, want %v", gm != nil, wm != nil)
		}
		if gm != nil {
			if gm.NumLines != wm.NumLines || !diffSameEnvelope(gm.Envelope, wm.Envelope) {
				return fmt.Errorf("attached message: %d lines %+v, want %d %+v", gm.NumLines, gm.Envelope, wm.NumLines, wm.Envelope)
			}
			if err := diffSameStructure(gm.BodyStructure, wm.BodyStructure, ""); err != nil {
				return fmt.Errorf("attached message: %w", err)
			}
		}
		return nil
	}
	return fmt.Errorf("unexpected %T", want)
}

// diffTextPart is the old helpers' description of a single part with
// its header text made what an IMAP string can carry (imapText): they
// wrote a NUL or octets that are no UTF-8 as the header held them.
func diffTextPart(p imap.BodyStructureSinglePart) imap.BodyStructureSinglePart {
	p.Params = imapTextParams(p.Params)
	p.ID, p.Description, p.Encoding = imapText(p.ID), imapText(p.Description), imapText(p.Encoding)
	if p.Extended != nil {
		e := *p.Extended
		e.Disposition, e.Language, e.Location = diffTextDisposition(e.Disposition), diffTextList(e.Language), imapText(e.Location)
		p.Extended = &e
	}
	return p
}

// diffTextMultiExt is diffTextPart for a multipart's extension data.
func diffTextMultiExt(x *imap.BodyStructureMultiPartExt) *imap.BodyStructureMultiPartExt {
	if x == nil {
		return nil
	}
	e := *x
	e.Params = imapTextParams(e.Params)
	e.Disposition, e.Language, e.Location = diffTextDisposition(e.Disposition), diffTextList(e.Language), imapText(e.Location)
	return &e
}

func diffTextDisposition(d *imap.BodyStructureDisposition) *imap.BodyStructureDisposition {
	if d == nil {
		return nil
	}
	return &imap.BodyStructureDisposition{Value: imapText(d.Value), Params: imapTextParams(d.Params)}
}

func diffTextList(l []string) []string {
	var out []string
	for _, s := range l {
		if s = imapText(s); s != "" {
			out = append(out, s)
		}
	}
	if out == nil {
		return l // nil or empty, as the old helper left it
	}
	return out
}

// diffRefTexts is what SEARCH BODY/TEXT looks in, in memory, for
// comparison with the streaming imapTextMatch: the whole message parsed
// by go-message, each text part decoded and lower-cased whole, and each
// header field as "name: value", decoded and lower-cased. Header fields
// count for TEXT, and those of an attached message for BODY too (they
// are in the outer message's body). A key matches if one of the texts
// holds it (diffRefMatch); the message is parsed once for all keys.
func diffRefTexts(msg []byte, withHeader bool) [][]byte {
	br := bufio.NewReader(bytes.NewReader(msg))
	h, _ := textproto.ReadHeader(br)
	rest, _ := io.ReadAll(br)
	return diffRefEntity(nil, h, rest, withHeader, "")
}

// diffRefMatch: does one of texts (diffRefTexts) hold needle, case
// insensitively?
func diffRefMatch(texts [][]byte, needle string) bool {
	low := refFold([]byte(needle))
	for _, text := range texts {
		if bytes.Contains(text, low) {
			return true
		}
	}
	return false
}

func diffRefEntity(texts [][]byte, h textproto.Header, body []byte, withHeader bool, parent string) [][]byte {
	if withHeader {
		for f := h.Fields(); f.Next(); {
			v := f.Value()
			if dec, err := imapWordDecoder.DecodeHeader(v); err == nil {
				v = dec
			}
			texts = append(texts, refFold([]byte(f.Key()+": "+v)))
		}
	}
	mh := gomessage.Header{Header: h}
	mt, params, _ := mh.ContentType()
	mt = strings.ToLower(mt)
	if !h.Has("Content-Type") && parent == "multipart/digest" {
		mt = "message/rfc822" // RFC 2046 section 5.1.5
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		mr := textproto.NewMultipartReader(bytes.NewReader(body), params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return texts
			}
			b, _ := io.ReadAll(p)
			texts = diffRefEntity(texts, p.Header, b, withHeader, mt)
		}
	case mt == "message/rfc822" || mt == "message/global":
		e, _ := gomessage.New(mh, bytes.NewReader(body))
		br := bufio.NewReader(e.Body)
		ih, _ := textproto.ReadHeader(br)
		rest, _ := io.ReadAll(br)
		return diffRefEntity(texts, ih, rest, true, "")
	case mt == "" || strings.HasPrefix(mt, "text/"):
		e, err := gomessage.New(mh, bytes.NewReader(body))
		text, _ := io.ReadAll(e.Body)
		if enc := imapCharset(params["charset"]); enc != nil && gomessage.IsUnknownCharset(err) {
			// Converted whole, where SEARCH converts a stream.
			if utf, err := enc.NewDecoder().Bytes(text); err == nil {
				text = utf
			}
		}
		return append(texts, refFold(text))
	}
	return texts
}

// diffCompareSearch compares SEARCH BODY and TEXT for needles cut from
// the message itself (in other cases too) and a few that are nowhere.
// The keys share one matcher's buffers, as the keys of one SEARCH do.
func diffCompareSearch(t testing.TB, name string, msg []byte, rng *rand.Rand) {
	t.Helper()
	needles := []string{"needle", "zzz-nowhere", "inner", "text/plain", "café", "CAFÉ", "€", "ПРИВЕТ", "grüße", "こんにちは", "subject: inner", "digested", "three.two", "--e", "subject: digest three"}
	for range 12 {
		if len(msg) == 0 {
			break
		}
		at := rng.IntN(len(msg))
		n := msg[at:min(len(msg), at+1+rng.IntN(10))]
		if rng.IntN(2) == 0 {
			n = bytes.ToUpper(n)
		}
		needles = append(needles, string(n))
	}
	ref := map[bool][][]byte{false: diffRefTexts(msg, false), true: diffRefTexts(msg, true)}
	nd := &imapNeedle{}
	for _, n := range needles {
		nd.low = imapFold(nd.low[:0], []byte(n))
		if len(nd.low) == 0 || bytes.ContainsAny(nd.low, "\r\n") {
			continue // header fields are matched one by one, without their line ends
		}
		for _, withHeader := range []bool{false, true} {
			got := nd.match(bytes.NewReader(msg), withHeader)
			if want := diffRefMatch(ref[withHeader], n); got != want {
				t.Fatalf("%s: SEARCH %s %q: %v, want %v\nmessage %q", name, map[bool]string{false: "BODY", true: "TEXT"}[withHeader], n, got, want, msg)
			}
		}
	}
}

// TestIMAPDiffSectionsMatchOldHelpers: on the corpus, every BODY section
// in every window, BINARY, BODYSTRUCTURE and SEARCH BODY/TEXT are what
// the in-memory helpers gave (or what they should have given).
func TestIMAPDiffSectionsMatchOldHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range diffMessages() {
		msg := []byte(c.msg)
		if !diffWellFormed(msg) && !strings.HasPrefix(c.name, "noclose/") {
			t.Fatalf("%s: the corpus message is not well-formed by the fuzz filter", c.name)
		}
		diffCompareSearch(t, c.name, msg, rng)
		if strings.HasPrefix(c.name, "noclose/") {
			continue // TestIMAPDiffMissingCloseDelimiter
		}
		bs := diffCompareStructure(t, c.name, msg)
		diffCompareDigestParts(t, c.name, msg, bs, nil)
		paths := diffPaths(bs, nil, nil)
		diffCompareSections(t, c.name, msg, paths, diffDigestMessages(bs, nil, nil), diffPartials)
		diffCompareBinary(t, c.name, msg, paths, diffPartials)
	}
}

// TestIMAPDiffMissingCloseDelimiter: a multipart whose close delimiter
// never comes still has its last part, as go-message's part reader gives
// it before it reports the unexpected end (ExtractBodySection then
// dropped the whole section, which was wrong: the octets are there).
func TestIMAPDiffMissingCloseDelimiter(t *testing.T) {
	for _, c := range diffMessages() {
		if !strings.HasPrefix(c.name, "noclose/") {
			continue
		}
		msg := []byte(c.msg)
		br := bufio.NewReader(bytes.NewReader(msg))
		h, _ := textproto.ReadHeader(br)
		mh := gomessage.Header{Header: h}
		_, params, _ := mh.ContentType()
		mr := textproto.NewMultipartReader(br, params["boundary"])
		for n := 1; ; n++ {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			want, err := io.ReadAll(p)
			if err != nil {
				// The unclosed part: go-message holds back its last
				// line end, in case a delimiter follows; with none to
				// own it, it is the part's (imapMultipart keeps it, and
				// BODYSTRUCTURE counts it).
				want = append(want, msg[len(bytes.TrimRight(msg, "\r\n")):]...)
			}
			got, err := diffNewSection(t, msg, imapSectionSpec{part: []int{n}}, nil)
			if err != nil || !bytes.Equal(got[0], want) {
				t.Fatalf("%s: BODY[%d] %q, %v; want %q", c.name, n, got, err, want)
			}
		}
	}
}

// diffWellFormed reports whether msg is one the old helpers read
// correctly and the new code is meant to read alike: consistent line
// ends without a bare CR, every header one go-message parses whole and
// well under the 256 KiB bound, every multipart split by go-message's
// reader without an error (a line such as "--boundary-" inside a part
// makes it give up) into at least one part, ended by its close
// delimiter, every Content-Type that is present a parsed type/subtype,
// every Content-Disposition parsed, nesting shallow.
func diffWellFormed(msg []byte) bool {
	if len(msg) > 64<<10 {
		return false
	}
	crlf := bytes.Contains(msg, []byte("\r\n"))
	for i, c := range msg {
		if c == '\r' && (!crlf || i+1 == len(msg) || msg[i+1] != '\n') {
			return false
		}
		if c == '\n' && crlf && (i == 0 || msg[i-1] != '\r') {
			return false
		}
	}
	return diffWellFormedEntity(bytes.NewReader(msg), "", 0)
}

func diffWellFormedEntity(r io.Reader, parent string, depth int) bool {
	if depth > 8 {
		return false
	}
	br := bufio.NewReader(r)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return false
	}
	if !diffHeaderParsesWhole(h) {
		return false
	}
	mh := gomessage.Header{Header: h}
	mt, params, err := mh.ContentType()
	if mh.Has("Content-Type") && (err != nil || !strings.Contains(mt, "/")) {
		return false // text/plain by RFC 2045 section 5.2; the old helper kept it
	}
	if _, _, err := mh.ContentDisposition(); mh.Has("Content-Disposition") && err != nil {
		return false // no disposition; the old helper sent the raw value as one
	}
	if !mh.Has("Content-Type") && parent == "multipart/digest" {
		mt = "message/rfc822"
	}
	switch {
	case strings.HasPrefix(mt, "multipart/"):
		if params["boundary"] == "" {
			return false
		}
		mr := textproto.NewMultipartReader(br, params["boundary"])
		parts := 0
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return parts > 0
			}
			if err != nil {
				return false
			}
			// The part again, header and all, from its raw octets: the
			// part reader has parsed the header already.
			body, err := io.ReadAll(p)
			if err != nil {
				return false
			}
			var raw bytes.Buffer
			if err := textproto.WriteHeader(&raw, p.Header); err != nil {
				return false
			}
			raw.Write(body)
			if !diffWellFormedEntity(&raw, mt, depth+1) {
				return false
			}
			parts++
		}
	case mt == "message/rfc822" || mt == "message/global":
		return diffWellFormedEntity(br, "", depth+1)
	}
	return true
}

// diffHeaderParsesWhole: every field of h is one imapReadHeader keeps
// too (a field name go-message trims and accepts, such as one with a
// space before the colon, is fine; the fuzzer finds the rest).
func diffHeaderParsesWhole(h textproto.Header) bool {
	var raw bytes.Buffer
	if textproto.WriteHeader(&raw, h) != nil || raw.Len() > 64<<10 {
		return false
	}
	again := imapReadHeader(bufio.NewReader(bytes.NewReader(raw.Bytes())))
	return again.Len() == h.Len()
}

// FuzzIMAPSectionDiff compares the streaming read path with the old
// in-memory helpers on any message the fuzzer makes that is well-formed
// (diffWellFormed): every section, BINARY, BODYSTRUCTURE and SEARCH.
//
// A well-formed input costs a few hundred parses of the message,
// milliseconds, and Go minimizes every input that finds new coverage
// for -fuzzminimizetime, 60 s by default, in which the "execs" count
// does not move: a run without that flag seems to stop after a few
// dozen inputs. Run it as `make fuzz` does, with
// -fuzzminimizetime 5s.
func FuzzIMAPSectionDiff(f *testing.F) {
	// The CRLF messages only: the seeds run in every test run, and
	// TestIMAPDiffSectionsMatchOldHelpers has the bare-LF ones.
	for _, c := range diffMessages() {
		if !strings.HasPrefix(c.name, "noclose/") && strings.HasSuffix(c.name, "/crlf") {
			f.Add([]byte(c.msg))
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) { diffFuzzMessage(t, msg) })
}

// diffFuzzMessage is FuzzIMAPSectionDiff's check of one input.
func diffFuzzMessage(t testing.TB, msg []byte) {
	t.Helper()
	if len(msg) > 16<<10 || !diffWellFormed(msg) {
		return
	}
	rng := rand.New(rand.NewPCG(uint64(len(msg)), 1))
	bs := diffCompareStructure(t, "fuzz", msg)
	diffCompareDigestParts(t, "fuzz", msg, bs, nil)
	paths := diffPaths(bs, nil, nil)
	if len(paths) > 24 {
		// Every path costs a few dozen parses of the message: a
		// thousand empty parts would stall the fuzzer.
		paths = paths[:24]
	}
	diffCompareSections(t, "fuzz", msg, paths, diffDigestMessages(bs, nil, nil), diffRandomPartial(rng))
	diffCompareBinary(t, "fuzz", msg, paths, diffRandomPartial(rng))
	diffCompareSearch(t, "fuzz", msg, rng)
}

// TestIMAPDiffLongLineBeforeDelimiter: a line longer than the multipart
// reader's 4 KiB buffer is read in pieces, and one of 4095 octets (or
// 8191) had its CRLF cut in two there: the CR stayed in the part, so
// BODY[1] and its BODYSTRUCTURE size were an octet longer than the part
// is (RFC 2046 section 5.1.1: the CRLF before a delimiter is the
// delimiter's).
func TestIMAPDiffLongLineBeforeDelimiter(t *testing.T) {
	for _, n := range []int{4093, 4094, 4095, 4096, 4097, 8190, 8191, 8192} {
		for _, nl := range []string{"\r\n", "\n"} {
			long := strings.Repeat("x", n)
			msg := []byte("Content-Type: multipart/mixed; boundary=b" + nl + nl +
				"--b" + nl + nl + long + nl + "--b" + nl + "Content-Type: text/plain" + nl + nl + long + nl + long + nl + "--b--" + nl)
			name := fmt.Sprintf("%d octets, %q", n, nl)
			if !diffWellFormed(msg) {
				t.Fatalf("%s: not well-formed", name)
			}
			diffCompareStructure(t, name, msg)
			for _, part := range [][]int{{1}, {2}} {
				for _, spec := range []imap.PartSpecifier{imap.PartSpecifierNone, imap.PartSpecifierMIME} {
					bs := &imap.FetchItemBodySection{Part: part, Specifier: spec}
					want := imapserver.ExtractBodySection(bytes.NewReader(msg), bs)
					if got, err := diffNewSection(t, msg, imapBodySpec(bs), nil); err != nil || !bytes.Equal(got[0], want) {
						t.Fatalf("%s: BODY[%s] is %d octets ending %q, want %d ending %q", name, diffSpecName(bs), len(got[0]), got[0][max(len(got[0])-3, 0):], len(want), want[max(len(want)-3, 0):])
					}
				}
			}
		}
	}
}

// TestIMAPDiffWholeHeaderFromTheCache: BODY[HEADER], HEADER.FIELDS and
// HEADER.FIELDS.NOT of the message itself come from the header cache
// (imapMeta), not from imapWriteSection, and must be what
// ExtractBodySection gave, except that BODY[HEADER] keeps a bare-LF
// header as stored (frontend/DESIGN.md), and that a message that is all
// header gets no blank line (RFC 9051 section 6.4.5), so BODY[HEADER] is
// the message. A message without header fields got a second blank line,
// so HEADER plus TEXT was longer than BODY[].
func TestIMAPDiffWholeHeaderFromTheCache(t *testing.T) {
	msgs := diffMessages()
	msgs = append(msgs, struct{ name, msg string }{"unterminated", "Subject: no line end"}, struct{ name, msg string }{"empty", ""})
	for _, c := range msgs {
		msg := []byte(c.msg)
		h, _, err := readHeaderSection(bufio.NewReader(bytes.NewReader(msg)), imapMaxHeader)
		if err != nil {
			t.Fatal(err)
		}
		for _, bs := range []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader},
			{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"subject", "X-A"}},
			{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"Subject"}}} {
			got := (&imapMeta{header: h}).headerSection(bs)
			want := imapserver.ExtractBodySection(bytes.NewReader(msg), bs)
			if strings.HasSuffix(c.name, "/lf") && len(bs.HeaderFields)+len(bs.HeaderFieldsNot) == 0 {
				want = bytes.ReplaceAll(want, []byte("\r\n"), []byte("\n"))
			}
			if diffNoBlankLine(msg) {
				want = bytes.TrimSuffix(want, []byte("\r\n"))
				if len(bs.HeaderFields)+len(bs.HeaderFieldsNot) == 0 {
					want = msg
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: BODY[%s] %q, want %q", c.name, diffSpecName(bs), got, want)
			}
		}
		text := imapserver.ExtractBodySection(bytes.NewReader(msg), &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText})
		if whole := imapWholeHeader(h); !bytes.Equal(append(whole, text...), msg) {
			t.Errorf("%s: BODY[HEADER] %q and BODY[TEXT] %q are not BODY[] %q", c.name, whole, text, msg)
		}
	}
}

// diffSameEnvelope compares our ENVELOPE with go-imap's, which gives no
// address at all for a field its parser refuses as a whole: there ours
// holds the entries it could read (imapLenientAddresses), and only
// there may the two differ.
func diffSameEnvelope(got, want *imap.Envelope) bool {
	if got == nil || want == nil {
		return got == want
	}
	g := *got
	// A Message-ID or In-Reply-To go-message's parser refuses is read
	// again (imapEnvelope; TestIMAPEnvelopeKeepsMessageIDsGoRefuses),
	// where go-imap gives none, or the ids before the first it refused.
	if want.MessageID == "" {
		g.MessageID = ""
	}
	if n := len(want.InReplyTo); len(g.InReplyTo) > n && slices.Equal(g.InReplyTo[:n], want.InReplyTo) {
		g.InReplyTo = want.InReplyTo
	}
	for _, f := range []struct{ g, w *[]imap.Address }{
		{&g.From, &want.From}, {&g.Sender, &want.Sender}, {&g.ReplyTo, &want.ReplyTo},
		{&g.To, &want.To}, {&g.Cc, &want.Cc}, {&g.Bcc, &want.Bcc},
	} {
		if len(*f.w) == 0 {
			*f.g = *f.w
		}
	}
	return reflect.DeepEqual(&g, want)
}
