package frontend_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// imapNonASCIIParams names its attachments in RFC 2231's forms: one
// extended value, one in continuations, one as an RFC 2047 word (as
// Gmail and Outlook write them) and one in raw UTF-8 (RFC 6532).
var imapNonASCIIParams = "From: a@example.com\r\n" +
	"Subject: names\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=b; x-note*=utf-8''caf%C3%A9\r\n" +
	"\r\n" +
	"--b\r\n" +
	"Content-Type: application/pdf; name*=utf-8''%E2%82%AC.pdf\r\n" +
	"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.pdf\r\n" +
	"\r\n" +
	"pdf\r\n" +
	"--b\r\n" +
	"Content-Type: application/pdf;\r\n" +
	" name*0*=utf-8''Gr%C3%BC%C3%9Fe%20aus%20;\r\n" +
	" name*1=\"M\\\"nchen.pdf\"\r\n" +
	"\r\n" +
	"pdf\r\n" +
	"--b\r\n" +
	"Content-Type: text/plain; name=\"=?UTF-8?B?0J/RgNC40LLQtdGCLnR4dA==?=\"\r\n" +
	"\r\n" +
	"txt\r\n" +
	"--b\r\n" +
	"Content-Type: text/plain; charset=utf-8; name=\"na\u00efve.txt\"\r\n" +
	"\r\n" +
	"txt\r\n" +
	"--b\r\n" +
	"Content-Type: text/plain; name*0*=utf-8''" + imapLongNameHalf + ";\r\n" +
	" name*1*=" + imapLongNameHalf + "%2Etxt\r\n" +
	"\r\n" +
	"txt\r\n" +
	"--b\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"Content-Description: R\u00e9sum\u00e9\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"Content-Type: application/octet-stream; name*=utf-8''%C3%A9t%C3%A9.bin\r\n" +
	"\r\n" +
	"bin\r\n" +
	"--b--\r\n"

// imapLongNameHalf is 20 Cyrillic letters, percent-encoded: a name of
// two of them is more than one RFC 2047 word holds (75 characters).
var imapLongNameHalf = strings.Repeat("%D0%96", 20)

// A parameter value that is not ASCII (decoded from RFC 2231 or RFC
// 2047, or raw UTF-8 in the header) went out in BODYSTRUCTURE as raw
// UTF-8 to every session: in a literal where the session had not
// enabled UTF-8 (the library quotes only 7-bit strings then), though
// IMAP4rev1 sends 8-bit characters only where their charset is
// identified (RFC 3501 section 4.3), so a client read it in whatever
// charset it guessed. Such a session gets
// RFC 2047 words, as Gmail and Outlook write attachment names, which
// every common client decodes; a session that enabled IMAP4rev2 or
// UTF8=ACCEPT gets UTF-8 (RFC 9051 section 4.3, RFC 6855 section 3).
// A Content-Description is made 7-bit the same way. The 7-bit form is
// made per session from the structure the node caches, which the
// sessions after the first still get in UTF-8.
func TestIMAPBodyStructureParamsAreSevenBitBeforeUTF8(t *testing.T) {
	const user = "bsparams@example.com"
	c, addr := soloIMAP(t, user)
	c.Deliver(0, imapNonASCIIParams, user)
	names := []string{"€.pdf", `Grüße aus M"nchen.pdf`, "Привет.txt", "naïve.txt", strings.Repeat("Ж", 40) + ".txt"}

	for _, enable := range []string{"", "UTF8=ACCEPT", "IMAP4rev2"} {
		r := dialIMAPRaw(t, addr, user)
		if enable != "" {
			r.ok("ENABLE " + enable)
		}
		r.ok("EXAMINE INBOX")
		got := strings.Join(r.ok("FETCH 1 (BODYSTRUCTURE BODY)"), "\n")
		if enable == "" {
			for i := 0; i < len(got); i++ {
				if got[i] >= 0x80 {
					t.Fatalf("no UTF-8 enabled: BODYSTRUCTURE %q has 8-bit octets", got)
				}
			}
			for _, want := range []string{`"=?utf-8?b?4oKsLnBkZg==?="`, `"=?utf-8?b?Y2Fmw6k=?="`} {
				if !strings.Contains(got, want) {
					t.Errorf("no UTF-8 enabled: BODYSTRUCTURE %q, want %s", got, want)
				}
			}
			continue
		}
		for _, want := range append([]string{"café", "Résumé", "été.bin"}, names...) {
			if !strings.Contains(got, strings.ReplaceAll(want, `"`, `\"`)) {
				t.Errorf("%s: BODYSTRUCTURE %q, want %q in UTF-8", enable, got, want)
			}
		}
	}

	// go-imap's client, as others, decodes the words back to the names
	// (parameters and descriptions alike).
	mp := firstBodyStructure(t, addr, user, len(names)+1)
	for i, want := range names {
		if got := mp.Children[i].(*imap.BodyStructureSinglePart).Filename(); got != want {
			t.Errorf("part %d: name %q, want %q", i+1, got, want)
		}
	}
	if got := mp.Extended.Params["x-note"]; got != "café" {
		t.Errorf("multipart parameter %q, want café", got)
	}
	msg := mp.Children[len(names)].(*imap.BodyStructureSinglePart)
	if got := msg.Description; got != "Résumé" {
		t.Errorf("attached message's description %q, want Résumé", got)
	}
	if msg.MessageRFC822 == nil {
		t.Fatalf("attached message %#v has no structure", msg)
	}
	if got := msg.MessageRFC822.BodyStructure.(*imap.BodyStructureSinglePart).Filename(); got != "été.bin" {
		t.Errorf("attached message's part: name %q, want été.bin", got)
	}
}

// firstBodyStructure logs in as user with go-imap's client and returns
// the extended BODYSTRUCTURE of INBOX's first message, which must be a
// multipart of parts parts.
func firstBodyStructure(t *testing.T, addr, user string, parts int) *imap.BodyStructureMultiPart {
	t.Helper()
	cl := dialIMAPAnon(t, addr)
	if err := cl.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := cl.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH BODYSTRUCTURE: %v %v", msgs, err)
	}
	mp, ok := msgs[0].BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) != parts {
		t.Fatalf("BODYSTRUCTURE %#v, want %d parts", msgs[0].BodyStructure, parts)
	}
	return mp
}
