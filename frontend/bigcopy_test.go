package frontend_test

import (
	"slices"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// A COPY of more messages than one raft entry may act on
// (node.Config.EntryMessages) is committed in pieces, and the client
// sees one COPY: a COPYUID pairing every source UID with its copy's
// UID. One that meets the quota part way answers NO [OVERQUOTA] and
// leaves the destination empty, as RFC 9051 §6.4.7 asks of a failed
// COPY.
func TestIMAPCopyOfALargeFolder(t *testing.T) {
	const log2, per = 9, 100
	c, s, user := largeInbox(t, log2, per)
	inbox := fetchUIDs(t, s)
	for _, name := range []string{"Archive", "Full"} {
		if err := s.Create(name, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}

	before := c.Nodes[1].State().Applied()
	cd, err := s.Copy(imap.SeqSet{{Start: 1, Stop: 0}}, "Archive").Wait()
	if err != nil {
		t.Fatalf("COPY 1:* of %d messages: %v", 1<<log2, err)
	}
	if n := c.Nodes[1].State().Applied() - before; n < 1<<log2/per {
		t.Errorf("COPY of %d messages took %d entries, want pieces of %d", 1<<log2, n, per)
	}
	src, _ := cd.SourceUIDs.Nums()
	dst, _ := cd.DestUIDs.Nums()
	if !slices.Equal(src, inbox) {
		t.Errorf("COPYUID names %d source UIDs, want INBOX's %d", len(src), len(inbox))
	}
	sel, err := s.Select("Archive", nil).Wait()
	if err != nil || sel.NumMessages != 1<<log2 {
		t.Fatalf("Archive holds %d messages (%v)", sel.NumMessages, err)
	}
	if cd.UIDValidity != sel.UIDValidity || !slices.Equal(fetchUIDs(t, s), dst) {
		t.Errorf("Archive's UIDVALIDITY and UIDs are not the COPYUID's")
	}

	// Room for half of another copy: the first pieces fit, a later one
	// does not.
	mb, err := c.Nodes[0].State().Mailbox(user)
	if err != nil {
		t.Fatal(err)
	}
	q := mb.UsedBytes + mb.UsedBytes/4
	c.Apply(&fsm.MailboxUpdate{Address: user, QuotaBytes: &q})
	if _, err := s.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Copy(imap.SeqSet{{Start: 1, Stop: 0}}, "Full").Wait()
	wantIMAPCode(t, "COPY past the quota", err, imap.ResponseCodeOverQuota)
	st, err := s.Status("Full", &imap.StatusOptions{NumMessages: true}).Wait()
	if err != nil || st.NumMessages == nil || *st.NumMessages != 0 {
		t.Fatalf("after COPY answered NO, Full: %+v (%v), want no message", st, err)
	}
}

// largeInbox starts a three-node cluster whose large operations go in
// pieces of per messages, and an IMAP server on its second node, and
// returns a session logged in as a new user whose INBOX, selected,
// holds 1<<log2 messages.
func largeInbox(t *testing.T, log2, per int) (*nodetest.Cluster, *imapConn, string) {
	t.Helper()
	return largeInboxWith(t, log2, per, 0, func(n *node.Node) frontend.MailStore { return n })
}

// largeInboxWith is largeInbox on a cluster at command encoding enc (0:
// the newest), whose IMAP server uses the store wrap makes of its node.
func largeInboxWith(t *testing.T, log2, per, enc int, wrap func(*node.Node) frontend.MailStore) (*nodetest.Cluster, *imapConn, string) {
	t.Helper()
	c := nodetest.StartWith(t, 3, func(cfg *node.Config) {
		cfg.EntryMessages = per
		if enc != 0 {
			cfg.BootstrapSettings = &node.BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: enc}
		}
	})
	addr := startIMAP(t, wrap(c.Nodes[1]), frontend.IMAPConfig{PollInterval: time.Second}, true)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	s := dialIMAPAnon(t, addr)
	if err := s.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Deliver(0, "Subject: x\r\n\r\nx\r\n", user)
	if _, err := s.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for range log2 {
		if _, err := s.Copy(imap.SeqSet{{Start: 1, Stop: 0}}, "INBOX").Wait(); err != nil {
			t.Fatal(err)
		}
	}
	sel, err := s.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1<<log2 {
		t.Fatalf("INBOX holds %d messages (%v)", sel.NumMessages, err)
	}
	return c, s, user
}

// fetchUIDs is the UIDs of the selected folder's messages, in order.
func fetchUIDs(t *testing.T, s *imapConn) []imap.UID {
	t.Helper()
	got, err := s.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	uids := make([]imap.UID, len(got))
	for i, m := range got {
		uids[i] = m.UID
	}
	return uids
}
