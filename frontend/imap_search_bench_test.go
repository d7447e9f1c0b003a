package frontend_test

import (
	"encoding/base64"
	"mime/quotedprintable"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// BenchmarkIMAPSearchBody measures SEARCH BODY over 100 text messages of
// about 16 KiB of French prose in the in-memory store, for a word that
// is in none of them (so every body is read to its end, as a webmail's
// search of a folder does). One iteration is one SEARCH; the variants
// are the forms mail arrives in:
//
//   - utf8: 8-bit UTF-8, the common case: nothing to convert.
//   - utf8-base64: the same, base64.
//   - latin1-qp: ISO-8859-1, quoted-printable (converted to UTF-8).
//   - cp1252-8bit: windows-1252, 8-bit (converted to UTF-8).
//   - utf8-japanese: 8-bit UTF-8 in Japanese, whose lines are long runs
//     of non-ASCII octets for SEARCH's Unicode folding (imap_fold.go).
func BenchmarkIMAPSearchBody(b *testing.B) {
	const n = 100
	prose := func(line string) string {
		var text strings.Builder
		for text.Len() < 16<<10 {
			text.WriteString(line)
		}
		return text.String()
	}
	utf := prose("Le café de la gare est fermé à cause de la grève générale, dit-il.\r\n")
	latin := imapBenchLatin1(utf)
	var qp strings.Builder
	w := quotedprintable.NewWriter(&qp)
	w.Write([]byte(latin))
	w.Close()
	for _, v := range []struct{ name, ct, cte, body string }{
		{"utf8", "text/plain; charset=utf-8", "8bit", utf},
		{"utf8-base64", "text/plain; charset=utf-8", "base64", imapBenchWrap64(utf)},
		{"latin1-qp", "text/plain; charset=iso-8859-1", "quoted-printable", qp.String()},
		{"cp1252-8bit", "text/plain; charset=windows-1252", "8bit", latin},
		{"utf8-japanese", "text/plain; charset=utf-8", "8bit", prose("駅前の喫茶店はゼネストのため閉まっていると彼は言った。\r\n")},
	} {
		b.Run(v.name, func(b *testing.B) {
			msg := "From: bench@example.org\r\nTo: bench@example.com\r\nSubject: search\r\nMIME-Version: 1.0\r\n" +
				"Content-Type: " + v.ct + "\r\nContent-Transfer-Encoding: " + v.cte + "\r\n\r\n" + v.body
			_, addr := imapBenchServe(b, msg, n)
			c := imapPlainSession(b, addr, "bench@example.com")
			for _, probe := range []string{"grève", "zzz-nowhere"} {
				d, err := c.Search(&imap.SearchCriteria{Body: []string{probe}}, nil).Wait()
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("%s: SEARCH BODY %s: %d of %d", v.name, probe, len(d.AllSeqNums()), n)
			}
			crit := &imap.SearchCriteria{Body: []string{"zzz-nowhere"}}
			b.SetBytes(int64(n * len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Search(crit, nil).Wait(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// imapBenchLatin1 is s, all of whose runes are below U+0100, in
// ISO-8859-1.
func imapBenchLatin1(s string) string {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		out = append(out, byte(r))
	}
	return string(out)
}

// imapBenchWrap64 is s in base64, in lines of 76 characters.
func imapBenchWrap64(s string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(s))
	var sb strings.Builder
	for len(enc) > 76 {
		sb.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	sb.WriteString(enc + "\r\n")
	return sb.String()
}
