package frontend

import (
	"bufio"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestIMAPMultipartMatchesStdlib: imapMultipart cuts well-formed
// multipart bodies where the standard library's reader does (the octets of each
// part, header included, up to the line end before the delimiter), with
// CRLF or LF, transport padding, a preamble and an epilogue, lines that
// look like delimiters but are not, and lines longer than its buffer.
func TestIMAPMultipartMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	lines := []string{"text", "--Bx", " --B", "--B-", "", "x--B", strings.Repeat("y", 5000), "--", "-"}
	for i := range 500 {
		nl := "\r\n"
		if i%4 == 0 {
			nl = "\n"
		}
		var body strings.Builder
		if i%3 == 0 {
			body.WriteString("preamble" + nl)
		}
		var want []string
		for range 1 + rng.IntN(4) {
			pad := ""
			if rng.IntN(3) == 0 {
				pad = " \t"
			}
			body.WriteString("--B" + pad + nl)
			var part strings.Builder
			part.WriteString("Content-Type: text/plain" + nl + nl)
			for k := range rng.IntN(6) {
				if k > 0 {
					part.WriteString(nl)
				}
				part.WriteString(lines[rng.IntN(len(lines))])
			}
			body.WriteString(part.String() + nl)
			want = append(want, part.String())
		}
		body.WriteString("--B--" + nl)
		if i%2 == 0 {
			body.WriteString("epilogue" + nl + "--B" + nl + "not a part" + nl)
		}

		var got []string
		mp := newIMAPMultipart(strings.NewReader(body.String()), "B")
		for {
			p, err := mp.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			got = append(got, string(b))
		}
		var ref []string
		mr := multipart.NewReader(strings.NewReader(body.String()), "B")
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			b, _ := io.ReadAll(p)
			ref = append(ref, string(b))
		}
		if len(got) != len(want) || len(ref) != len(want) {
			t.Fatalf("case %d: %d parts, stdlib %d, want %d:\n%q", i, len(got), len(ref), len(want), body.String())
		}
		for k := range want {
			if got[k] != want[k] {
				t.Fatalf("case %d part %d:\n got %q\nwant %q", i, k+1, got[k], want[k])
			}
			if !strings.HasSuffix(want[k], ref[k]) {
				t.Fatalf("case %d part %d: the stdlib's body %q is not the end of %q", i, k+1, ref[k], want[k])
			}
		}
	}
	// No close delimiter: the last part runs to the end.
	mp := newIMAPMultipart(strings.NewReader("--B\r\n\r\nabc\r\n"), "B")
	p, err := mp.next()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(p); string(b) != "\r\nabc\r\n" {
		t.Errorf("unclosed part %q", b)
	}
	if _, err := mp.next(); err != io.EOF {
		t.Errorf("after the end: %v", err)
	}
}

// TestIMAPCleanHeaderDropsOnlyWhatDoesNotFit: a field too large for the
// header bound is dropped whole, and the fields after it are kept.
func TestIMAPCleanHeaderDropsOnlyWhatDoesNotFit(t *testing.T) {
	huge := "To: a@example.org" + strings.Repeat(",\r\n b@example.org", imapMaxHeader/16) + "\r\n"
	long := "X-Long: " + strings.Repeat("x", imapMaxHeader+10) + "\r\n"
	msg := "Subject: s\r\n" + huge + long + "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\none\r\n--B--\r\n"
	clean, _ := imapCleanHeader(bufio.NewReader(strings.NewReader(msg)))
	got := string(clean)
	if want := "Subject: s\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"; got != want {
		t.Errorf("cleaned header %.200q, want %q", got, want)
	}
	if mp, ok := imapBodyStructure(strings.NewReader(msg)).(*imap.BodyStructureMultiPart); !ok || len(mp.Children) != 1 {
		t.Errorf("BODYSTRUCTURE after a huge field is not the multipart")
	}
}
