package frontend_test

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestIMAPManyPartsAreBounded: a message of 200,000 empty parts (1.4 MB;
// SMTP takes 50 MiB from anyone) costs FETCH BODYSTRUCTURE and SEARCH
// TEXT a bounded amount: the structure describes the first
// imapMaxMIMEParts parts and SEARCH looks at as many. Each part cost
// about 9 KiB of garbage and 30 µs: BODYSTRUCTURE of such a message
// allocated 1.8 GB and kept 37 MiB in the node's cache (counted there as
// 1 KiB), and a 50 MiB one would have kept a core busy for minutes.
func TestIMAPManyPartsAreBounded(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	const parts = 200000
	var msg strings.Builder
	msg.WriteString("From: a@example.org\r\nSubject: parts\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
	for range parts {
		msg.WriteString("--b\r\n\r\n")
	}
	msg.WriteString("--b\r\nContent-Type: text/plain\r\n\r\nneedle\r\n--b--\r\n")
	b.deliver(t, 0, msg.String(), user)
	r := dialIMAPRaw(t, b.server(0), user)
	r.ok("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"FETCH 1 (BODYSTRUCTURE)", `"mixed" ("boundary" "b")`},
		{"SEARCH TEXT needle", "* SEARCH"},
	} {
		alloc := allocsOf(t, r, tc.cmd, tc.want)
		t.Logf("%s: %d MiB allocated", tc.cmd, alloc>>20)
		if alloc > 200<<20 {
			t.Errorf("%s allocated %d MiB for %d parts", tc.cmd, alloc>>20, parts)
		}
	}
	c := dialIMAP(t, b, 1, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodyStructure: &imap.FetchItemBodyStructure{Extended: true}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH BODYSTRUCTURE: %v", err)
	}
	mp, ok := msgs[0].BodyStructure.(*imap.BodyStructureMultiPart)
	if !ok || len(mp.Children) == 0 || len(mp.Children) > 10000 {
		t.Fatalf("BODYSTRUCTURE %T with %d parts, want a multipart of 1 to 10000", msgs[0].BodyStructure, len(mp.Children))
	}
	// The parts described are the message's own, whatever follows them.
	n := len(mp.Children)
	secs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Part: []int{n}, Peek: true}, {Part: []int{n}, Specifier: imap.PartSpecifierMIME, Peek: true}}}).Collect()
	if err != nil || len(secs) != 1 {
		t.Fatalf("FETCH BODY[%d]: %v", n, err)
	}
	for _, s := range secs[0].BodySection {
		if want := "\r\n"; s.Section.Specifier == imap.PartSpecifierMIME && string(s.Bytes) != want || s.Section.Specifier == imap.PartSpecifierNone && len(s.Bytes) != 0 {
			t.Errorf("BODY[%d%s] = %q, want an empty part", n, s.Section.Specifier, s.Bytes)
		}
	}
}
