package frontend_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/node"
	"powermail/node/nodetest"
)

// BenchmarkIMAPFetch measures "FETCH 1:100 (UID FLAGS RFC822.SIZE
// BODY.PEEK[])" of 4 KiB messages through the server, over loopback:
//
//   - mem: the in-memory store, so the cost is the frontend's (parsing,
//     snapshot lookups, streaming bodies, go-imap's encoder).
//   - cluster: node 2 of a three-node cluster, the messages delivered
//     through node 0 (R=2, so some bodies are fetched from a peer).
//
// One iteration is one FETCH command; msgs/s counts messages.
func BenchmarkIMAPFetch(b *testing.B) {
	const n = 100
	msg := imapBenchMessage(4 << 10)
	b.Run("mem", func(b *testing.B) {
		_, addr := imapBenchServe(b, msg, n)
		imapBenchFetch(b, addr, "bench@example.com", n, len(msg))
	})
	b.Run("cluster", func(b *testing.B) {
		c := nodetest.Start(b, 3)
		c.AddMailboxes(imapPassword, "bench@example.com")
		for range n {
			c.Deliver(0, msg, "bench@example.com")
		}
		addr := startIMAP(b, c.Nodes[2], frontend.IMAPConfig{}, true)
		imapBenchFetch(b, addr, "bench@example.com", n, len(msg))
	})
}

// BenchmarkIMAPNoopAfterChange measures what a session pays for another
// session's flag change in a folder of 10,000 messages: one iteration
// changes one message's flags in the store and sends NOOP, whose poll
// reads the folder's view and reports the one FETCH FLAGS.
func BenchmarkIMAPNoopAfterChange(b *testing.B) {
	const n = 10000
	const user = "bench@example.com"
	store, addr := imapBenchServe(b, imapBenchMessage(1<<10), n)
	c := imapPlainSession(b, addr, user)
	ops := []node.FlagOp{node.FlagsAdd, node.FlagsRemove}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		uid := uint32(1 + i%n)
		if _, err := store.StoreFlags(context.Background(), user, "INBOX", []uint32{uid}, ops[i/n%2], []string{`\Seen`}); err != nil {
			b.Fatal(err)
		}
		if err := c.Noop().Wait(); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// imapBenchServe serves an in-memory store in which bench@example.com
// (password imapPassword) holds n copies of msg, and returns the store
// and the server's address.
func imapBenchServe(b *testing.B, msg string, n int) (*frontend.IMAPMemStore, string) {
	b.Helper()
	store := frontend.NewIMAPMemStore()
	store.AddMailbox("bench@example.com", imapPassword)
	for range n {
		if err := store.Deliver(msg, "bench@example.com"); err != nil {
			b.Fatal(err)
		}
	}
	return store, startIMAP(b, store, frontend.IMAPConfig{}, true)
}

// imapPlainSession logs user in over plain TCP and selects INBOX, with
// no event channels to fill; the connection is closed when the test or
// benchmark ends.
func imapPlainSession(tb testing.TB, addr, user string) *imapclient.Client {
	tb.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.Login(user, imapPassword).Wait(); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		tb.Fatal(err)
	}
	return c
}

func imapBenchFetch(b *testing.B, addr, user string, n, size int) {
	c := imapPlainSession(b, addr, user)
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}}}
	set := imap.SeqSet{{Start: 1, Stop: uint32(n)}}
	b.SetBytes(int64(n * size))
	b.ReportAllocs()
	for b.Loop() {
		msgs, err := c.Fetch(set, opts).Collect()
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) != n || len(msgs[n-1].BodySection) != 1 || len(msgs[n-1].BodySection[0].Bytes) != size {
			b.Fatalf("FETCH returned %d messages", len(msgs))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// imapBenchMessage is a plain text message of exactly size octets.
func imapBenchMessage(size int) string {
	head := "From: bench@example.org\r\nTo: bench@example.com\r\nSubject: benchmark\r\n\r\n"
	line := strings.Repeat("x", 76) + "\r\n"
	var sb strings.Builder
	sb.WriteString(head)
	for sb.Len()+len(line) <= size {
		sb.WriteString(line)
	}
	sb.WriteString(strings.Repeat("y", size-sb.Len()))
	if sb.Len() != size {
		panic(fmt.Sprintf("message of %d octets, want %d", sb.Len(), size))
	}
	return sb.String()
}

// BenchmarkIMAPFetchSections measures what a client's message view
// costs: BODYSTRUCTURE and the text part of a two-part multipart
// (BODY.PEEK[1]), cut from the body as a stream, for 100 messages of
// about 8 KiB in the in-memory store. One iteration is one FETCH.
func BenchmarkIMAPFetchSections(b *testing.B) {
	const n = 100
	text := imapBenchMessage(4 << 10)
	_, body, _ := strings.Cut(text, "\r\n\r\n")
	msg := "From: bench@example.org\r\nTo: bench@example.com\r\nSubject: parts\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\n" + body + "\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + body + "\r\n--b--\r\n"
	_, addr := imapBenchServe(b, msg, n)
	c := imapPlainSession(b, addr, "bench@example.com")
	opts := &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{{Peek: true, Part: []int{1}}}}
	set := imap.SeqSet{{Start: 1, Stop: n}}
	b.ReportAllocs()
	for b.Loop() {
		msgs, err := c.Fetch(set, opts).Collect()
		if err != nil {
			b.Fatal(err)
		}
		if len(msgs) != n || len(msgs[n-1].BodySection) != 1 || len(msgs[n-1].BodySection[0].Bytes) != len(body) {
			b.Fatalf("FETCH returned %d messages", len(msgs))
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
