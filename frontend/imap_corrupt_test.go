package frontend_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"powermail/frontend"
	"powermail/node"
	"powermail/node/nodetest"
)

// A message whose stored copy fails its hash only at its end (damaged
// behind valid chunk checksums) has had every other byte of its FETCH
// BODY[] literal sent by then. The connection is cut, but a client that
// hands a literal to its application as it arrives (go-imap's
// imapclient does) must not get the whole literal: the application
// would keep the damaged message as good before the response's end
// failed. The last octet is held back until the body verified, so the
// literal itself comes short.
func TestIMAPFetchOfABodyFailingItsHashIsCutShort(t *testing.T) {
	c := nodetest.StartWith(t, 3, func(cfg *node.Config) { cfg.FaultInjection = true })
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	// 128 KiB exactly, two chunks: the server's writes of the literal
	// leave nothing in its buffer, so every byte is on the wire before
	// the check.
	const size = 128 << 10
	head := "Subject: sized\r\n\r\n"
	raw := head + strings.Repeat("0123456789abcde\n", (size-len(head))/16) + strings.Repeat("x", (size-len(head))%16)
	c.Deliver(0, raw, user)
	msgs, err := c.Nodes[0].State().Messages(user, "INBOX", 0, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages: %v %v", msgs, err)
	}
	rec, err := c.Nodes[0].State().Body(msgs[0].Hash)
	if err != nil {
		t.Fatal(err)
	}
	i := int(rec.Replicas[0][1] - '1') // "n2" is c.Nodes[1]
	c.Admin(i, "POST", "/v1/fault/damage/"+msgs[0].Hash+"?keep_crc=1", "")

	b := &imapClusterBackend{c: c}
	for _, n := range c.Nodes {
		b.addrs = append(b.addrs, startIMAP(t, n, frontend.IMAPConfig{PollInterval: time.Second}, true))
	}
	conn := dialIMAP(t, b, i, user)
	if _, err := conn.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	cmd := conn.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}})
	if msg := cmd.Next(); msg != nil {
		for item := msg.Next(); item != nil; item = msg.Next() {
			sec, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok {
				continue
			}
			got, err := io.ReadAll(sec.Literal)
			if err == nil && len(got) == len(raw) && string(got) != raw {
				t.Fatalf("the whole literal (%d octets) of a body that failed its hash reached the client", len(got))
			}
			break
		}
	}
	if err := cmd.Close(); err == nil {
		t.Fatal("the FETCH of a body that failed its hash completed")
	}
}
