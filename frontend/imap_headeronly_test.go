package frontend_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestIMAPHeaderOfMessageWithoutBlankLine: a message that is all header,
// with no blank line and no body (a script's "Subject: x" sent as the
// whole DATA, or APPENDed so), gets no blank line in its header
// sections: RFC 9051 section 6.4.5 (and RFC 3501's) include it "in all
// header fetches, except in the case of a message which has no body and
// no blank line". One was added, so BODY[HEADER] was longer than the
// message (RFC822.SIZE, BODY[]), and HEADER plus TEXT was not BODY[]. The
// same holds for a message attached as a part.
func TestIMAPHeaderOfMessageWithoutBlankLine(t *testing.T) {
	user := imapNewAddr(t)
	c, addr := soloIMAP(t, user)
	const top = "Subject: no body\r\nFrom: a@example.org\r\n"
	const inner = "Subject: inner\r\nX-A: 1\r\n"
	const nested = "Subject: outer\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "\r\n--B--\r\n"
	c.Deliver(0, top, user)
	c.Deliver(0, nested, user)

	cl := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sec := func(part []int, spec imap.PartSpecifier, fields ...string) *imap.FetchItemBodySection {
		return &imap.FetchItemBodySection{Part: part, Specifier: spec, HeaderFields: fields, Peek: true}
	}
	fetch := func(seq uint32, secs ...*imap.FetchItemBodySection) (*imapclientBuffer, int64) {
		t.Helper()
		msgs, err := cl.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{RFC822Size: true, BodySection: secs}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("FETCH %d: %v %v", seq, msgs, err)
		}
		return &imapclientBuffer{msgs[0].FindBodySection}, msgs[0].RFC822Size
	}

	whole, header, fields, text := sec(nil, imap.PartSpecifierNone), sec(nil, imap.PartSpecifierHeader),
		sec(nil, imap.PartSpecifierHeader, "Subject"), sec(nil, imap.PartSpecifierText)
	got, size := fetch(1, whole, header, fields, text)
	if size != int64(len(top)) || got.s(whole) != top {
		t.Fatalf("the stored message: RFC822.SIZE %d, BODY[] %q; want %d, %q", size, got.s(whole), len(top), top)
	}
	for _, w := range []struct {
		sec  *imap.FetchItemBodySection
		want string
	}{{header, top}, {fields, "Subject: no body\r\n"}, {text, ""}} {
		if g := got.s(w.sec); g != w.want {
			t.Errorf("BODY[%s] of a message without blank line: %q, want %q", imapSecName(w.sec), g, w.want)
		}
	}

	part, pheader, pfields, ptext := sec([]int{1}, imap.PartSpecifierNone), sec([]int{1}, imap.PartSpecifierHeader),
		sec([]int{1}, imap.PartSpecifierHeader, "X-A"), sec([]int{1}, imap.PartSpecifierText)
	got, _ = fetch(2, part, pheader, pfields, ptext)
	if got.s(part) != inner {
		t.Fatalf("BODY[1] %q, want %q", got.s(part), inner)
	}
	for _, w := range []struct {
		sec  *imap.FetchItemBodySection
		want string
	}{{pheader, inner}, {pfields, "X-A: 1\r\n"}, {ptext, ""}} {
		if g := got.s(w.sec); g != w.want {
			t.Errorf("BODY[%s] of an attached message without blank line: %q, want %q", imapSecName(w.sec), g, w.want)
		}
	}
}

type imapclientBuffer struct {
	find func(*imap.FetchItemBodySection) []byte
}

func (b *imapclientBuffer) s(sec *imap.FetchItemBodySection) string { return string(b.find(sec)) }

func imapSecName(s *imap.FetchItemBodySection) string {
	name := fmt.Sprint(s.Part)
	if s.Specifier != imap.PartSpecifierNone {
		name += "." + string(s.Specifier)
	}
	if len(s.HeaderFields) > 0 {
		name += fmt.Sprint(".FIELDS ", s.HeaderFields)
	}
	return name
}

// A message whose header is followed by a bare CR and then its end has
// no blank line either (a line ends in LF): its header sections are the
// same whether the message is the one fetched, answered from the header
// cache, or attached to another, read from the body. The attached one
// took the CR for the blank line and added one.
func TestIMAPHeaderEndedByABareCRAgreesWhenAttached(t *testing.T) {
	user := imapNewAddr(t)
	c, addr := soloIMAP(t, user)
	const msg = "Subject: cr\r\nX-A: 1\r\n\r"
	c.Deliver(0, msg, user)
	c.Deliver(0, "Subject: outer\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"+
		"--B\r\nContent-Type: message/rfc822\r\n\r\n"+msg+"\r\n--B--\r\n", user)

	cl := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	fetch := func(seq uint32, sec *imap.FetchItemBodySection) string {
		t.Helper()
		msgs, err := cl.Fetch(imap.SeqSetNum(seq), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("FETCH %d: %v %v", seq, msgs, err)
		}
		return string(msgs[0].FindBodySection(sec))
	}
	for _, fields := range [][]string{{"X-A"}, {"X-None"}} {
		top := fetch(1, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: fields, Peek: true})
		inner := fetch(2, &imap.FetchItemBodySection{Part: []int{1}, Specifier: imap.PartSpecifierHeader, HeaderFields: fields, Peek: true})
		if top != inner || strings.HasSuffix(top, "\r\n\r\n") || top == "\r\n" {
			t.Errorf("HEADER.FIELDS %v of the message %q, attached %q; want the same, without a blank line", fields, top, inner)
		}
	}
}
