package frontend_test

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
	"powermail/node"
	"powermail/node/nodetest"
)

// TestIMAPAppendOnAFullDisk: RFC 9051 has no response code for a full
// disk. An APPEND through a node down to its free-space reserve is
// refused NO [UNAVAILABLE] (RFC 5530: a temporary failure, so the client
// keeps the message and tries again later), never [OVERQUOTA], which
// would send the user to delete mail that is not the problem, nor
// [SERVERBUG]; the text says that the server's storage is full. Mail the
// full node already holds is still read.
func TestIMAPAppendOnAFullDisk(t *testing.T) {
	c := nodetest.StartWith(t, 3, func(cfg *node.Config) {
		if cfg.ID == "n3" {
			cfg.MinFreeBytes = 1 << 62 // more than any disk has
		}
	})
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	raw := imapTestMsg("before", "delivered through a node with room")
	c.Deliver(0, raw, user)
	b := &imapClusterBackend{c: c}
	for _, n := range c.Nodes {
		b.addrs = append(b.addrs, startIMAP(t, n, frontend.IMAPConfig{PollInterval: time.Second}, true))
	}

	conn := dialIMAP(t, b, 2, user)
	msg := imapTestMsg("appended", "to a full disk")
	cmd := conn.Append("INBOX", int64(len(msg)), nil)
	cmd.Write([]byte(msg))
	cmd.Close()
	_, err := cmd.Wait()
	wantIMAPCode(t, "APPEND on a full node", err, imap.ResponseCodeUnavailable)
	if !strings.Contains(err.Error(), "storage") {
		t.Errorf("APPEND on a full node: %v, want a text that names the storage", err)
	}

	if _, err := conn.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := conn.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH on the full node: %v, %d messages (want only the one delivered before)", err, len(msgs))
	}
	if got := string(msgs[0].FindBodySection(&imap.FetchItemBodySection{Peek: true})); got != raw {
		t.Fatalf("BODY[] = %q, want %q", got, raw)
	}
}
