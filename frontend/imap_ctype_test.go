package frontend_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// Mail readers take a Content-Type whose parameters break RFC 2045's
// grammar for what it plainly says: scanners and older mailers write an
// unquoted file name with spaces (name=Scan 2024.pdf), a boundary with
// "=" unquoted (RFC 2046 §5.1.1 warns that it must be quoted, because
// senders forget), or a doubled ";". Go's parser refuses the whole
// field, and every such part was described as text/plain: the message's
// structure, its attachments and their names were gone for a client
// that reads BODYSTRUCTURE (Apple Mail, Outlook), and BODY[2] did not
// exist. The media type and the parameters that can be read are kept,
// and sections and SEARCH see the parts BODYSTRUCTURE names.
func TestIMAPLenientContentTypeParameters(t *testing.T) {
	const user = "ctype@example.com"
	c, addr := soloIMAP(t, user)

	c.Deliver(0, "From: scanner@example.com\r\n"+
		"Subject: scan\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=----=_Part_0_1.2\r\n"+
		"\r\n"+
		"------=_Part_0_1.2\r\n"+
		"Content-Type: text/plain; charset=utf-8;; format=flowed\r\n"+
		"\r\n"+
		"Your scan is attached.\r\n"+
		"------=_Part_0_1.2\r\n"+
		"Content-Type: application/pdf; name=Scan 2024.pdf\r\n"+
		"Content-Disposition: attachment; filename=Scan 2024.pdf\r\n"+
		"Content-Transfer-Encoding: base64\r\n"+
		"\r\n"+
		"JVBERi0xLjQKbmVlZGxlCg==\r\n"+
		"------=_Part_0_1.2--\r\n", user)

	r := dialIMAPRaw(t, addr, user)
	r.ok("EXAMINE INBOX")
	r.want("FETCH 1 (BODYSTRUCTURE)", "* 1 FETCH",
		`("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL "7bit" 22 0`,
		`("application" "pdf" ("name" "Scan 2024.pdf") NIL NIL "base64" 24 NIL ("attachment" ("filename" "Scan 2024.pdf"))`,
		`"mixed" ("boundary" "----=_Part_0_1.2")`)
	r.want("FETCH 1 (BODY.PEEK[2] BINARY.PEEK[2])", "JVBERi0xLjQKbmVlZGxlCg==")
	r.want("FETCH 1 (BODY.PEEK[1])", "Your scan is attached.")
	if u := r.ok("FETCH 1 (BINARY.PEEK[2])"); !strings.Contains(strings.Join(u, "\n"), "%PDF-1.4") {
		t.Errorf("BINARY[2]: %q, want the decoded PDF", u)
	}
	// The text part is searched as text; the PDF, a part of its own
	// now, is not text, as BODYSTRUCTURE says.
	r.want("SEARCH BODY attached", "* SEARCH 1")
	if u := r.ok("SEARCH BODY JVBERi0x"); len(u) != 1 || u[0] != "* SEARCH" {
		t.Errorf("SEARCH BODY in the PDF's base64: %q, want no match", u)
	}
}

// A text part whose Content-Type has a malformed parameter beside its
// charset is converted from that charset for SEARCH, as a well-formed
// one is: go-message, which refuses the field, left it unconverted, so
// Latin-1 text did not match its own words typed in UTF-8.
func TestIMAPSearchCharsetBesideMalformedParameter(t *testing.T) {
	const user = "ctype-search@example.com"
	c, addr := soloIMAP(t, user)
	c.Deliver(0, "Subject: latin\r\n"+
		"Content-Type: text/plain; charset=iso-8859-1; name=Brief 1.txt\r\n"+
		"Content-Transfer-Encoding: 8bit\r\n"+
		"\r\n"+
		"Viele Gr\xfc\xdfe\r\n", user)
	r := dialIMAPRaw(t, addr, user)
	r.ok("EXAMINE INBOX")
	r.want(`SEARCH CHARSET UTF-8 BODY "grüße"`, "* SEARCH 1")
	r.want("FETCH 1 (BODYSTRUCTURE)", "* 1 FETCH", `("charset" "iso-8859-1" "name" "Brief 1.txt")`)
}

// A Content-Type that neither Go's parser nor the lenient reading can
// read (a word after the subtype, a quote in the subtype, no subtype at
// all) is text/plain to BODYSTRUCTURE (RFC 2045 §5.2), and SEARCH must
// search such a part as the text BODYSTRUCTURE says it is: it took the
// raw field for the type and searched none of them but those that began
// with "text/".
func TestIMAPSearchUnreadableContentTypeIsText(t *testing.T) {
	const user = "ctypesearch@example.com"
	c, addr := soloIMAP(t, user)
	for _, ct := range []string{"application/pdf x", `application/"pdf"; name=a`, "image"} {
		c.Deliver(0, "From: a@example.com\r\n"+
			"Subject: unreadable\r\n"+
			"MIME-Version: 1.0\r\n"+
			"Content-Type: multipart/mixed; boundary=b\r\n"+
			"\r\n"+
			"--b\r\n"+
			"Content-Type: text/plain\r\n"+
			"\r\n"+
			"first\r\n"+
			"--b\r\n"+
			"Content-Type: "+ct+"\r\n"+
			"\r\n"+
			"needle\r\n"+
			"--b--\r\n", user)
	}
	r := dialIMAPRaw(t, addr, user)
	r.ok("EXAMINE INBOX")
	for i := 1; i <= 3; i++ {
		r.want(fmt.Sprintf("FETCH %d (BODYSTRUCTURE)", i), "* ", `("text" "plain" NIL NIL NIL "7bit" 6 0 NIL NIL NIL NIL) "mixed"`)
	}
	r.want("SEARCH BODY needle", "* SEARCH 1 2 3")
}

// BODYSTRUCTURE's strings are text an IMAP string can carry whatever the
// header holds: a parameter value that is quoted with a NUL in it, or
// RFC 2231-encoded as %00, went out with the NUL inside a literal, which
// may hold none (RFC 9051 §4.3), and octets that are no UTF-8 went out
// in a quoted string after ENABLE UTF8=ACCEPT (RFC 9051 §9). Control
// characters are dropped and such octets made U+FFFD.
func TestIMAPBodyStructureStringsAreText(t *testing.T) {
	const user = "bstext@example.com"
	c, addr := soloIMAP(t, user)
	c.Deliver(0, "From: a@example.com\r\n"+
		"Subject: text\r\n"+
		"MIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=b; x=\"m\x00n\"\r\n"+
		"\r\n"+
		"--b\r\n"+
		"Content-Type: application/pdf; name=\"a\x00b\xffc.pdf\"\r\n"+
		"Content-Disposition: attachment; filename*=utf-8''x%00y.pdf\r\n"+
		"Content-Description: d\x00e\r\n"+
		"\r\n"+
		"pdf\r\n"+
		"--b--\r\n", user)
	for _, utf8Accept := range []bool{false, true} {
		r := dialIMAPRaw(t, addr, user)
		if utf8Accept {
			r.ok("ENABLE UTF8=ACCEPT")
		}
		r.ok("EXAMINE INBOX")
		got := strings.Join(r.ok("FETCH 1 (BODYSTRUCTURE)"), "\n")
		if strings.Contains(got, "\x00") || !utf8.ValidString(got) {
			t.Errorf("UTF8=ACCEPT %v: BODYSTRUCTURE %q has a NUL or octets that are no UTF-8", utf8Accept, got)
		}
		for _, want := range []string{"xy.pdf", "de", `"mn"`} {
			if !strings.Contains(got, want) {
				t.Errorf("UTF8=ACCEPT %v: BODYSTRUCTURE %q, want %q", utf8Accept, got, want)
			}
		}
	}
}
