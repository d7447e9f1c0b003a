package frontend_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/node"
)

// imapLatin1Msg has a quoted-printable ISO-8859-1 part, a base64
// windows-1252 part, a part in a transfer encoding nobody knows, and an
// attached message (for BODY[4.TEXT], BODY[4.1] and BODY[4.HEADER]).
const imapLatin1Msg = "From: a@example.org\r\n" +
	"Subject: latin\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"B\"\r\n" +
	"\r\n" +
	"--B\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"caf=E9\r\n" +
	"--B\r\n" +
	"Content-Type: text/plain; charset=windows-1252\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"gGFi\r\n" +
	"--B\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: x-uuencode\r\n" +
	"\r\n" +
	"begin 644 x\r\n" +
	"--B\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"Subject: inner\r\n" +
	"X-A: 1\r\n" +
	"\r\n" +
	"inner body\r\n" +
	"--B--\r\n"

// testIMAPFetchBinaryKeepsCharset: BINARY undoes the transfer encoding
// only (RFC 3516 section 4.2); the octets of a text part in ISO-8859-1
// or windows-1252 are the part's own. An unknown encoding is NO
// [UNKNOWN-CTE] (RFC 3516 section 4.3), never an empty section. BODY
// sections of an attached message are cut at the right places. (The raw
// reader splits lines at CRLF; they are joined with "\n" here. go-imap
// names a partial BINARY item without its "<origin>", which is the
// library's.)
func testIMAPFetchBinaryKeepsCharset(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	b.deliver(t, 0, imapLatin1Msg, user)
	r := dialIMAPRaw(t, b.server(1), user)
	r.ok("SELECT INBOX")
	u := r.ok("FETCH 1 (BINARY.PEEK[1] BINARY.PEEK[2] BINARY.SIZE[1] BINARY.PEEK[2]<1.5>)")
	got := strings.Join(u, "\n")
	for _, want := range []string{"BINARY[1] ~{4}\ncaf\xe9", "BINARY[2] ~{3}\n\x80ab", "BINARY.SIZE[1] 4", "BINARY[2] ~{2}\nab"} {
		if !strings.Contains(got, want) {
			t.Errorf("FETCH BINARY: %q missing from %q", want, got)
		}
	}
	u, tagged := r.cmd("FETCH 1 (BINARY.PEEK[3])")
	if !strings.HasPrefix(tagged, "NO [UNKNOWN-CTE]") {
		t.Errorf("BINARY[3] in x-uuencode: %q %q, want NO [UNKNOWN-CTE]", u, tagged)
	}
	u = r.ok("FETCH 1 (BODY.PEEK[4.TEXT] BODY.PEEK[4.1] BODY.PEEK[4.HEADER.FIELDS (X-A)] BODY.PEEK[4.MIME] BODY.PEEK[1]<3.100> BODY.PEEK[TEXT]<2000.5>)")
	got = strings.Join(u, "\n")
	for _, want := range []string{
		"BODY[4.TEXT] {10}\ninner body ",
		"BODY[4.1] {10}\ninner body ",
		"BODY[4.HEADER.FIELDS (\"X-A\")] {10}\nX-A: 1\n\n",
		"BODY[4.MIME] {32}\nContent-Type: message/rfc822\n\n",
		"BODY[1]<3> {3}\n=E9 ",
		"BODY[TEXT]<2000> {0}\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("FETCH sections: %q missing from %q", want, got)
		}
	}
}

// TestIMAPPartialFetchAndSearchMemory: a partial FETCH of a part, BINARY.SIZE
// and SEARCH BODY of a large message cost memory bounded by the window
// and the search term, not by the message (a 50 MiB message, many
// sessions: the node's heap).
func TestIMAPPartialFetchAndSearchMemory(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	const size = 16 << 20
	var msg strings.Builder
	msg.WriteString("From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n")
	line := strings.Repeat("abcdefghij", 7) + "\r\n"
	for msg.Len() < size {
		msg.WriteString(line)
	}
	msg.WriteString("needle\r\n--B--\r\n")
	b.deliver(t, 0, msg.String(), user)
	r := dialIMAPRaw(t, b.server(0), user)
	r.ok("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"FETCH 1 (BODY.PEEK[1]<0.10>)", "BODY[1]<0> {10}"},
		{"FETCH 1 (BODY.PEEK[TEXT]<100.10>)", "BODY[TEXT]<100> {10}"},
		{"FETCH 1 (BINARY.SIZE[1])", "BINARY.SIZE[1] "},
		{"SEARCH BODY NEEDLE", "* SEARCH 1"},
	} {
		alloc := allocsOf(t, r, tc.cmd, tc.want)
		t.Logf("%s: %d KiB allocated", tc.cmd, alloc>>10)
		if alloc > size/4 {
			t.Errorf("%s allocated %d MiB for a %d MiB message", tc.cmd, alloc>>20, size>>20)
		}
	}
}

// TestIMAPHugeHeaderMemory: a message, or one of its parts, whose header
// is 8 MiB of short fields (SMTP takes such a message from anyone) costs
// FETCH BODYSTRUCTURE, a part's section and SEARCH TEXT a bounded amount
// of memory. Parsing such a header whole took about 90 times its size
// (750 MiB here; a 50 MiB message would take the node down).
func TestIMAPHugeHeaderMemory(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	const size = 8 << 20
	fields := strings.Repeat("a:b\r\n", size/5)
	b.deliver(t, 0, "Subject: top\r\n"+fields+"Content-Type: text/plain\r\n\r\nbody\r\n", user)
	b.deliver(t, 0, "Subject: part\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"+fields+"\r\npart body\r\n--B--\r\n", user)
	r := dialIMAPRaw(t, b.server(0), user)
	r.ok("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"FETCH 1 (BODYSTRUCTURE)", "BODYSTRUCTURE ("},
		{"FETCH 2 (BODYSTRUCTURE)", "BODYSTRUCTURE ("},
		{"FETCH 2 (BODY.PEEK[1.TEXT])", "BODY[1.TEXT] {9}"},
		{"FETCH 2 (BODY.PEEK[1.MIME]<0.4>)", "BODY[1.MIME]<0> {4}"},
		{"SEARCH TEXT nothing", "* SEARCH"},
	} {
		alloc := allocsOf(t, r, tc.cmd, tc.want)
		t.Logf("%s: %d MiB allocated", tc.cmd, alloc>>20)
		if alloc > 12*size {
			t.Errorf("%s allocated %d MiB for a header of %d MiB", tc.cmd, alloc>>20, size>>20)
		}
	}
}

// testIMAPBodyStructureDeepNesting: messages attached inside each other
// deeper than the server follows are still described in valid syntax. A
// "MESSAGE" "RFC822" part must carry an envelope, a body and a line count
// (RFC 9051 section 9, media-message); the level where the server stops
// following is described as an opaque part instead.
func testIMAPBodyStructureDeepNesting(t *testing.T, b imapBackend) {
	user := b.newUser(t)
	msg := "Subject: deep\r\nContent-Type: message/rfc822\r\n\r\n"
	for range 40 {
		msg += "Subject: inner\r\nContent-Type: message/rfc822\r\n\r\n"
	}
	msg += "Subject: last\r\n\r\nbottom\r\n"
	b.deliver(t, 0, msg, user)
	c := dialIMAP(t, b, 1, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []bool{true, false} {
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: ext}}).Collect()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("FETCH BODYSTRUCTURE (extended %v) of a deeply nested message: %v", ext, err)
		}
		depth := 0
		for bs := msgs[0].BodyStructure; bs != nil; depth++ {
			sp, ok := bs.(*imap.BodyStructureSinglePart)
			if !ok || sp.MessageRFC822 == nil {
				break
			}
			bs = sp.MessageRFC822.BodyStructure
		}
		if depth < 16 {
			t.Errorf("BODYSTRUCTURE followed %d levels, want at least 16", depth)
		}
	}
	if err := c.Noop().Wait(); err != nil {
		t.Errorf("the connection after BODYSTRUCTURE: %v", err)
	}
}

// TestIMAPFetchOfAMessageExpungedElsewhere: a message another session
// expunged, whose body is then collected (the store says
// ErrBodyUnavailable, as a node does once no replica holds it), gets NO
// [EXPUNGEISSUED] from a FETCH of its body before this session polled,
// not NO [UNAVAILABLE] "try again": a failed command does not poll, so a
// client that retried would never learn of the EXPUNGE. A message still
// there whose body cannot be read is still UNAVAILABLE.
func TestIMAPFetchOfAMessageExpungedElsewhere(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	b.deliver(t, 0, imapTestMsg("one", "first"), user)
	b.deliver(t, 0, imapTestMsg("two", "second"), user)
	a := dialIMAPRaw(t, b.server(0), user)
	a.ok("SELECT INBOX")
	other := dialIMAPRaw(t, b.server(1), user)
	other.ok("SELECT INBOX")
	other.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
	other.ok("EXPUNGE")
	b.store.Fail = func(op string) error {
		if op == "OpenBody" {
			return node.ErrBodyUnavailable
		}
		return nil
	}
	if u, tagged := a.cmd("FETCH 1 (BODY.PEEK[])"); !strings.HasPrefix(tagged, "NO [EXPUNGEISSUED]") {
		t.Errorf("FETCH of the expunged message's body: %q %q, want NO [EXPUNGEISSUED]", u, tagged)
	}
	if u, tagged := a.cmd("FETCH 2 (BODY.PEEK[1])"); !strings.HasPrefix(tagged, "NO [UNAVAILABLE]") {
		t.Errorf("FETCH of a body that cannot be read: %q %q, want NO [UNAVAILABLE]", u, tagged)
	}
	b.store.Fail = nil
	a.want("NOOP", "* 1 EXPUNGE")
}

// TestIMAPDeepSectionPathIsCheap: a section path deeper than
// BODYSTRUCTURE describes (imapMaxMIMEDepth) into a message of 1000
// nested multiparts is answered at once with an empty section; walking
// it took seconds of CPU per MiB, twice per FETCH.
func TestIMAPDeepSectionPathIsCheap(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	const levels = 1000
	var msg strings.Builder
	for i := range levels {
		fmt.Fprintf(&msg, "Content-Type: multipart/mixed; boundary=X%d\r\n\r\n--X%d\r\n", i, i)
	}
	msg.WriteString("\r\n" + strings.Repeat("data line\r\n", 100000))
	b.deliver(t, 0, msg.String(), user)
	r := dialIMAPRaw(t, b.server(0), user)
	r.ok("SELECT INBOX")
	path := strings.TrimSuffix(strings.Repeat("1.", levels), ".")
	start := time.Now()
	r.want("FETCH 1 (BODY.PEEK["+path+"])", "* 1 FETCH", "{0}")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("FETCH of a section %d levels deep took %v", levels, d)
	}
}

// TestIMAPSectionsKeptOrStreamed: a FETCH's sections are sent from what
// the measuring pass kept while they fit imapSectionHold (1 MiB for the
// message), and cut from the body again past it; both give the same
// octets. Here part 1 (3 MiB) is streamed, and part 2, the partial
// window of part 1 and BINARY[2] are kept.
func TestIMAPSectionsKeptOrStreamed(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	big := strings.Repeat(strings.Repeat("0123456789", 7)+"\r\n", 3<<20/72)
	small := "hello, small part\r\n"
	msg := "From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\n" + big + "\r\n" +
		"--B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8sIHNtYWxsIHBhcnQNCg==\r\n--B--\r\n"
	b.deliver(t, 0, msg, user)
	c := dialIMAP(t, b, 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	opts := &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{
			{Peek: true, Part: []int{1}},
			{Peek: true, Part: []int{1}, Partial: &imap.SectionPartial{Offset: 70, Size: 5}},
			{Peek: true, Part: []int{2}},
		},
		BinarySection: []*imap.FetchItemBinarySection{{Peek: true, Part: []int{2}}},
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), opts).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %d messages, %v", len(msgs), err)
	}
	m := msgs[0]
	want := map[string]string{"part 1": big, "part 1 <70.5>": big[70:75], "part 2": "aGVsbG8sIHNtYWxsIHBhcnQNCg==", "binary 2": small}
	got := map[string]string{
		"part 1":        string(m.FindBodySection(opts.BodySection[0])),
		"part 1 <70.5>": string(m.FindBodySection(opts.BodySection[1])),
		"part 2":        string(m.FindBodySection(opts.BodySection[2])),
		"binary 2":      string(m.FindBinarySection(opts.BinarySection[0])),
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %d octets %.40q, want %d octets %.40q", k, len(got[k]), got[k], len(w), w)
		}
	}
}

// allocsOf runs cmd on r, checks that its untagged responses contain
// want, and returns the octets this process (client and server)
// allocated meanwhile.
func allocsOf(t *testing.T, r *imapRaw, cmd, want string) uint64 {
	t.Helper()
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	u := r.ok(cmd)
	runtime.ReadMemStats(&after)
	if !strings.Contains(strings.Join(u, "\n"), want) {
		t.Errorf("%s: %.200q, want %q", cmd, u, want)
	}
	return after.TotalAlloc - before.TotalAlloc
}

// TestIMAPDigestMessageSections: a part of a multipart/digest without a
// Content-Type is a message (RFC 2046 section 5.1.5), and its sections
// are those of the same message attached as message/rfc822 to a
// multipart/mixed. The default is the digest's parts' only: the header
// of the message inside is text/plain's, as any message's. Paths below
// such a message kept the digest as their parent, so BODY[1.1.TEXT],
// BODY[1.1.HEADER] and BODY[1.1.1] read the message's body as yet
// another message, header and all (go-imap's helpers did the same).
func TestIMAPDigestMessageSections(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	inner := "From: one@example.org\r\nSubject: digested\r\n\r\nX-Looks: like a header field\r\n\r\nthe text\r\n"
	b.deliver(t, 0, "Subject: digest\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n"+inner+"--d--\r\n", user)
	b.deliver(t, 0, "Subject: mixed\r\nContent-Type: multipart/mixed; boundary=d\r\n\r\n--d\r\nContent-Type: message/rfc822\r\n\r\n"+inner+"--d--\r\n", user)
	c := dialIMAP(t, b, 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	sections := map[string]*imap.FetchItemBodySection{
		"1.1":        {Peek: true, Part: []int{1, 1}},
		"1.1.TEXT":   {Peek: true, Part: []int{1, 1}, Specifier: imap.PartSpecifierText},
		"1.1.HEADER": {Peek: true, Part: []int{1, 1}, Specifier: imap.PartSpecifierHeader},
		"1.1.1":      {Peek: true, Part: []int{1, 1, 1}},
		"1.TEXT":     {Peek: true, Part: []int{1}, Specifier: imap.PartSpecifierText},
	}
	opts := &imap.FetchOptions{}
	for _, s := range sections {
		opts.BodySection = append(opts.BodySection, s)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2), opts).Collect()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("FETCH: %d messages, %v", len(msgs), err)
	}
	body := "X-Looks: like a header field\r\n\r\nthe text" // the last CRLF is the delimiter's
	want := map[string]string{"1.1": body, "1.1.TEXT": body, "1.1.1": body, "1.TEXT": body,
		"1.1.HEADER": "From: one@example.org\r\nSubject: digested\r\n\r\n"}
	for i, m := range msgs {
		for name, s := range sections {
			if got := string(m.FindBodySection(s)); got != want[name] {
				t.Errorf("%s: BODY[%s] is %q, want %q", []string{"digest", "mixed"}[i], name, got, want[name])
			}
		}
	}
}
