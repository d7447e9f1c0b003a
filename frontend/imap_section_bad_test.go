package frontend_test

import (
	"strings"
	"testing"
)

// A section's MIME specifier must follow a part number, and part
// numbers start at 1 (RFC 3501 section 6.4.5 and RFC 9051 section 6.4.5;
// section-part is nz-number *("." nz-number) in both grammars, and in
// RFC 3516's section-binary). go-imap parses BODY[MIME], BODY[0] and
// BINARY[0] all the same, and they were answered (the message's header,
// an empty section), so a client's mistake looked like an answer. They
// are BAD, before anything is marked \Seen; the sections they resemble
// still work.
func TestIMAPFetchMalformedSectionIsBad(t *testing.T) {
	const user = "badsection@example.com"
	c, addr := soloIMAP(t, user)
	c.Deliver(0, imapMultipart, user)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	for _, item := range []string{
		"BODY[MIME]", "BODY.PEEK[MIME]", "BODY[0]", "BODY[0.MIME]", "BODY[0.HEADER]",
		"BODY[1.0]", "BODY[2.0.TEXT]", "BINARY[0]", "BINARY.PEEK[1.0]", "BINARY.SIZE[0]",
		"(FLAGS BODY[MIME])",
	} {
		for _, cmd := range []string{"FETCH 1 ", "UID FETCH 1 "} {
			u, tagged := r.cmd(cmd + item)
			if !strings.HasPrefix(tagged, "BAD ") || len(u) != 0 {
				t.Errorf("%s%s: %q then %q, want BAD and nothing else", cmd, item, u, tagged)
			}
		}
	}
	r.want("FETCH 1 (FLAGS)", "* 1 FETCH (FLAGS ()")
	r.want("FETCH 1 BODY.PEEK[1.MIME]", "* 1 FETCH (BODY[1.MIME] {")
	r.want("FETCH 1 BODY.PEEK[2]", "* 1 FETCH (BODY[2] {")
	r.want("FETCH 1 BINARY.SIZE[2]", "* 1 FETCH (BINARY.SIZE[2] 4)")
}
