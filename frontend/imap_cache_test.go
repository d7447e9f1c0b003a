package frontend

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-message/textproto"
)

func TestReadHeaderSection(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 10000) + "\r\n"
	cases := []struct{ in, want string }{
		{"Subject: a\r\nFrom: b\r\n\r\nbody\r\n", "Subject: a\r\nFrom: b\r\n\r\n"},
		{"Subject: a\n\nbody\n", "Subject: a\n\n"},
		{"Subject: no body\r\n", "Subject: no body\r\n"},
		// A line longer than the reader's buffer ends in a lone "\n" read;
		// that is not the blank line.
		{long + "Subject: after\r\n\r\nbody", long + "Subject: after\r\n\r\n"},
		{"\r\nbody only\r\n", "\r\n"},
	}
	for _, c := range cases {
		got, complete, err := readHeaderSection(bufio.NewReaderSize(strings.NewReader(c.in), 16), imapMaxHeader)
		if err != nil || !complete || string(got) != c.want {
			t.Errorf("readHeaderSection(%.30q) = %.40q, %v, %v; want %.40q", c.in, got, complete, err, c.want)
		}
	}
	huge := strings.Repeat("X-H: v\r\n", imapMaxHeader/4)
	got, complete, _ := readHeaderSection(bufio.NewReader(strings.NewReader(huge)), imapMaxHeader)
	if complete || len(got) < imapMaxHeader || len(got) > imapMaxHeader+16 {
		t.Errorf("a huge header was cut at %d bytes, want about %d", len(got), imapMaxHeader)
	}
}

func TestIMAPMetaCacheEvicts(t *testing.T) {
	c := newIMAPMetaCache(8500) // three entries of 500 header bytes (2,768 each)
	for i := 0; i < 10; i++ {
		c.put(string(rune('a'+i)), &imapMeta{header: make([]byte, 500)})
	}
	if c.used > 8500 {
		t.Fatalf("cache holds %d bytes, bound 8500", c.used)
	}
	if c.get("a") != nil || c.get("j") == nil {
		t.Fatal("the oldest entry stayed or the newest went")
	}
	// A use keeps an entry over newer ones.
	c.get("h")
	c.put("k", &imapMeta{header: make([]byte, 500)})
	c.put("l", &imapMeta{header: make([]byte, 500)})
	if c.get("h") == nil {
		t.Fatal("a recently used entry was evicted first")
	}
}

func TestIMAPHeaderSectionMatchesTheLibrary(t *testing.T) {
	msg := "From: A <a@example.com>\r\nSubject: first\r\n line folded\r\nX-Dup: 1\r\nTo: b@example.com\r\nx-dup: 2\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nbody text\r\n"
	sections := []*imap.FetchItemBodySection{
		{Specifier: imap.PartSpecifierHeader},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"subject", "FROM", "x-dup"}},
		{Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"x-dup", "To"}},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Nope"}},
		{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Partial: &imap.SectionPartial{Offset: 3, Size: 12}},
		{Specifier: imap.PartSpecifierHeader, Partial: &imap.SectionPartial{Offset: 5000, Size: 10}},
	}
	raw, _, err := readHeaderSection(bufio.NewReader(strings.NewReader(msg)), imapMaxHeader)
	if err != nil {
		t.Fatal(err)
	}
	m := &imapMeta{header: raw}
	for _, bs := range sections {
		want := imapserver.ExtractBodySection(strings.NewReader(msg), bs)
		if got := imapHeaderSection(m.parsedHeader(), bs); string(got) != string(want) {
			t.Errorf("%+v:\n got %q\nwant %q", bs, got, want)
		}
		if got := m.headerSection(bs); string(got) != string(want) {
			t.Errorf("cached %+v:\n got %q\nwant %q", bs, got, want)
		}
	}
}

// BODY[HEADER] is the header as stored, also past a line the parser
// stops at (one without a colon), where the parsed fields end.
func TestIMAPWholeHeaderPastAMalformedLine(t *testing.T) {
	head := "From: a@example.com\r\nX-Junk\r\nSubject: still here\r\n\r\n"
	raw, _, err := readHeaderSection(bufio.NewReader(strings.NewReader(head+"body\r\n")), imapMaxHeader)
	if err != nil {
		t.Fatal(err)
	}
	m := &imapMeta{header: raw}
	if got := m.headerSection(&imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader}); string(got) != head {
		t.Errorf("BODY[HEADER] = %q, want %q", got, head)
	}
}

// imapReadHeader skips what is no field, with its continuation lines,
// and leaves the reader at the body.
func TestIMAPReadHeaderSkipsJunk(t *testing.T) {
	for _, tc := range []struct{ in, fields, rest string }{
		{" lead\r\nA: 1\r\njunk\r\n more junk\r\nB: 2\r\n  folded\r\n\r\nbody", "A=1 B=2 folded", "body"},
		{"A: 1\nno colon here\nC : 3\n\nbody\n", "A=1 C=3", "body\n"},
		{"From x@y Sat Nov 28 10:00:00 2026\r\nD: 4", "D=4", ""},
		{"\r\nonly a body", "", "only a body"},
	} {
		br := bufio.NewReaderSize(strings.NewReader(tc.in), 16)
		h := imapReadHeader(br)
		var got []string
		for f := h.Fields(); f.Next(); {
			got = append(got, f.Key()+"="+f.Value())
		}
		rest, _ := io.ReadAll(br)
		if strings.Join(got, " ") != tc.fields || string(rest) != tc.rest {
			t.Errorf("%q: fields %q, rest %q; want %q, %q", tc.in, got, rest, tc.fields, tc.rest)
		}
	}
}

// BenchmarkIMAPReadHeader: what skipping malformed lines costs against
// go-message's own parse, on a typical 1.5 KiB header (ENVELOPE, header
// SEARCH and BODYSTRUCTURE parse one per message not in the cache).
func BenchmarkIMAPReadHeader(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 1500; i++ {
		fmt.Fprintf(&sb, "Received: from host%d.example.org by mx.example.com;\r\n\tSat, 28 Nov 2026 10:00:%02d +0000\r\n", i, i%60)
	}
	sb.WriteString("From: A <a@example.org>\r\nTo: b@example.com\r\nSubject: hello\r\n\r\nbody\r\n")
	raw := sb.String()
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			textproto.ReadHeader(bufio.NewReader(strings.NewReader(raw)))
		}
	})
	b.Run("lenient", func(b *testing.B) {
		for b.Loop() {
			imapReadHeader(bufio.NewReader(strings.NewReader(raw)))
		}
	})
}
