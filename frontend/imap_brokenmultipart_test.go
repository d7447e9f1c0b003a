package frontend_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestIMAPBrokenMultipartSectionsMatchTheirStructure: a multipart with
// no boundary parameter, or whose boundary never occurs, is described as
// one part (an opaque one, or text), and BODY[1], BINARY[1] and SEARCH
// must then give that part's octets: the size BODYSTRUCTURE names.
// BODY[1] of such a message was empty, so a client that showed the
// part showed nothing, and BODYSTRUCTURE's size said otherwise.
func TestIMAPBrokenMultipartSectionsMatchTheirStructure(t *testing.T) {
	const text = "the needle is here\r\n--other\r\nmore text\r\n"
	cases := []struct{ name, header string }{
		{"no boundary parameter", "Content-Type: multipart/mixed\r\n"},
		{"a boundary that never occurs", "Content-Type: multipart/mixed; boundary=absent\r\n"},
		{"only a close delimiter", "Content-Type: multipart/mixed; boundary=other\r\n"},
	}
	b := newIMAPFakeBackend(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			user := b.newUser(t)
			body := text
			if strings.Contains(tc.name, "close") {
				body = "the needle is here\r\n--other--\r\n"
			}
			b.deliver(t, 0, "From: a@example.org\r\nSubject: broken\r\n"+tc.header+"\r\n"+body, user)
			c := dialIMAP(t, b, 0, user)
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
