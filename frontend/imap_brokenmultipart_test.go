package frontend_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// testIMAPBrokenMultipartSectionsMatchTheirStructure: a multipart with
// no boundary parameter, or whose boundary never occurs, is described as
// one part (an opaque one, or text), and BODY[1], BINARY[1] and SEARCH
// must then give that part's octets: the size BODYSTRUCTURE names.
// BODY[1] of such a message was empty, so a client that showed the
// part showed nothing, and BODYSTRUCTURE's size said otherwise.
//
// The body is read again from its start when the first delimiter is not
// in the first few KiB read, so a long preamble before real parts is
// tried too; in TestIMAPCluster the body may be streamed from a peer.
func testIMAPBrokenMultipartSectionsMatchTheirStructure(t *testing.T, b imapBackend) {
	long := strings.Repeat("a preamble line of the needle and more\r\n", 300)
	cases := []struct{ name, header, body string }{
		{"no boundary parameter", "Content-Type: multipart/mixed\r\n", "the needle is here\r\n--other\r\nmore text\r\n"},
		{"a boundary that never occurs", "Content-Type: multipart/mixed; boundary=absent\r\n", "the needle is here\r\n--other\r\nmore text\r\n"},
		{"only a close delimiter", "Content-Type: multipart/mixed; boundary=other\r\n", "the needle is here\r\n--other--\r\n"},
		{"a long preamble and no part", "Content-Type: multipart/mixed; boundary=absent\r\n", long},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user := b.newUser(t)
			body := tc.body
			b.deliver(t, 0, "From: a@example.org\r\nSubject: broken\r\n"+tc.header+"\r\n"+body, user)
			c := dialIMAP(t, b, 1, user)
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
				BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
				BodySection: []*imap.FetchItemBodySection{{Part: []int{1}, Peek: true},
					{Specifier: imap.PartSpecifierText, Peek: true}},
				BinarySection: []*imap.FetchItemBinarySection{{Part: []int{1}, Peek: true}},
			}).Collect()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("FETCH: %v", err)
			}
			m := msgs[0]
			sp, ok := m.BodyStructure.(*imap.BodyStructureSinglePart)
			if !ok {
				t.Fatalf("BODYSTRUCTURE %#v, want one part", m.BodyStructure)
			}
			if int(sp.Size) != len(body) {
				t.Errorf("BODYSTRUCTURE size %d, want %d", sp.Size, len(body))
			}
			for _, s := range m.BodySection {
				if !bytes.Equal(s.Bytes, []byte(body)) {
					t.Errorf("BODY[%v%s] = %q, want %q", s.Section.Part, s.Section.Specifier, s.Bytes, body)
				}
			}
			for _, s := range m.BinarySection {
				if !bytes.Equal(s.Bytes, []byte(body)) {
					t.Errorf("BINARY[%v] = %q, want %q", s.Section.Part, s.Bytes, body)
				}
			}
			data, err := c.Search(&imap.SearchCriteria{Body: []string{"needle"}}, nil).Wait()
			if err != nil || len(data.AllSeqNums()) != 1 {
				t.Errorf("SEARCH BODY needle: %v %v, want message 1", data, err)
			}
		})
	}
}

// TestIMAPLongPreambleBeforeParts: the first part of a multipart whose
// preamble is longer than what the section reader holds is still its
// first part, not the body (imapHasParts reads the body again there).
func TestIMAPLongPreambleBeforeParts(t *testing.T) {
	b := newIMAPFakeBackend(t)
	user := b.newUser(t)
	preamble := strings.Repeat("preamble line\r\n", 1000)
	b.deliver(t, 0, "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+preamble+"--b\r\n\r\npart one\r\n--b--\r\n", user)
	c := dialIMAP(t, b, 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Part: []int{1}, Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 || len(msgs[0].BodySection) != 1 {
		t.Fatalf("FETCH BODY[1]: %v", err)
	}
	if got := string(msgs[0].BodySection[0].Bytes); got != "part one" {
		t.Errorf("BODY[1] = %.60q, want %q", got, "part one")
	}
}
