package frontend_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// firstLines is the first line of every message in a folder, in UID order.
func firstLines(t *testing.T, n *node.Node, user, folder string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := n.View(ctx, user, folder)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range v.Messages {
		b, err := n.OpenBody(ctx, m.Hash)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(b)
		b.Close()
		out = append(out, strings.SplitN(string(raw), "\r\n", 2)[0])
	}
	return out
}

// A session's commands act on the folder it selected, not on another that
// took its name meanwhile (RENAME A B, then RENAME C A, by another
// client): the command fails, and C's messages stay as they were.
func TestIMAPCommandsKeepToTheSelectedFolder(t *testing.T) {
	c := nodetest.Start(t, 1)
	n := c.Nodes[0]
	addr := startIMAP(t, n, frontend.IMAPConfig{PollInterval: time.Second}, true)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, f := range []string{"A", "C"} {
		if err := n.CreateFolder(ctx, user, f, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := n.Append(ctx, user, f, nil, time.Time{}, strings.NewReader("Subject: in "+f+"\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range []string{"MOVE", "STORE", "EXPUNGE", "CLOSE"} {
		t.Run(cmd, func(t *testing.T) {
			s := dialIMAPAnon(t, addr)
			if err := s.Login(user, imapPassword).Wait(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Select("A", nil).Wait(); err != nil {
				t.Fatal(err)
			}
			if cmd == "EXPUNGE" || cmd == "CLOSE" { // C's message is one an EXPUNGE would take
				if _, err := n.StoreFlags(ctx, user, "C", []uint32{1}, node.FlagsAdd, []string{`\Deleted`}); err != nil {
					t.Fatal(err)
				}
			}
			if err := n.RenameFolder(ctx, user, "A", "B"); err != nil {
				t.Fatal(err)
			}
			if err := n.RenameFolder(ctx, user, "C", "A"); err != nil {
				t.Fatal(err)
			}
			var err error
			switch cmd {
			case "MOVE":
				_, err = s.Move(imap.UIDSetNum(1), "Trash").Wait()
				if code := imapCode(err); code != imap.ResponseCodeNonExistent {
					t.Errorf("MOVE from a replaced folder: %v, want NO [NONEXISTENT] (TRYCREATE would have the client create Trash)", err)
				}
			case "STORE":
				err = s.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close()
			case "EXPUNGE":
				err = s.Expunge().Close()
			case "CLOSE":
				// CLOSE expunges nothing of the other folder, and still
				// closes: OK, and nothing is selected after it.
				if err := s.UnselectAndExpunge().Wait(); err != nil {
					t.Errorf("CLOSE on a folder another took the name of: %v, want OK", err)
				}
				if _, ferr := s.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true}).Collect(); ferr == nil {
					t.Error("a folder is still selected after CLOSE")
				}
				err = errors.New("closed")
			}
			if err == nil {
				t.Errorf("%s on a folder that another took the name of: OK", cmd)
			}
			if got := firstLines(t, n, user, "A"); len(got) != 1 || got[0] != "Subject: in C" {
				t.Fatalf("after %s, A (once C) holds %q", cmd, got)
			}
			v, _ := n.View(ctx, user, "A")
			if fl := v.Messages[0].Flags; len(fl) > 0 && cmd != "EXPUNGE" && cmd != "CLOSE" {
				t.Errorf("after %s, C's message has flags %v", cmd, fl)
			}
			// Back as before for the next command: A is A, C is C.
			if err := n.RenameFolder(ctx, user, "A", "C"); err != nil {
				t.Fatal(err)
			}
			if err := n.RenameFolder(ctx, user, "B", "A"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A POP3 session that outlives the removal and re-creation of its mailbox
// deletes nothing at QUIT: its UIDs name the new mailbox's messages.
func TestPOP3QuitAfterTheMailboxWasRecreated(t *testing.T) {
	c := nodetest.Start(t, 1)
	n := c.Nodes[0]
	cfg := pop3TestConfig()
	cfg.ServerID = n.ID()
	_, srv := pop3Serve(t, n, pop3TestAuth(n, true), cfg, false)
	user := "recreated@example.com"
	c.AddMailboxes("pw", user)
	c.Deliver(0, "Subject: old 1\r\n\r\nold\r\n", user)
	c.Deliver(0, "Subject: old 2\r\n\r\nold\r\n", user)

	cl := pop3Dial(t, srv)
	cl.login(user, "pw")
	cl.ok("DELE 1")
	cl.ok("DELE 2")
	c.Apply(&fsm.MailboxRemove{Address: user})
	c.AddMailboxes("pw", user)
	c.Deliver(0, "Subject: new 1\r\n\r\nnew\r\n", user)
	c.Deliver(0, "Subject: new 2\r\n\r\nnew\r\n", user)

	if r := cl.cmd("QUIT"); !strings.HasPrefix(r, "-ERR") {
		t.Errorf("QUIT after the maildrop was replaced: %q, want -ERR", r)
	}
	if got := firstLines(t, n, user, "INBOX"); len(got) != 2 {
		t.Errorf("the old session's QUIT left the new mailbox %q, want both new messages", got)
	}
}

// RENAME INBOX INBOX/old is allowed (RFC 9051 §6.3.6): the messages move
// below INBOX, which stays, empty.
func TestIMAPRenameInboxBelowItself(t *testing.T) {
	c := nodetest.Start(t, 1)
	n := c.Nodes[0]
	addr := startIMAP(t, n, frontend.IMAPConfig{}, true)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	c.Deliver(0, "Subject: kept\r\n\r\nbody\r\n", user)
	s := dialIMAPAnon(t, addr)
	if err := s.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename("INBOX", "INBOX/old", nil).Wait(); err != nil {
		t.Fatalf("RENAME INBOX INBOX/old: %v", err)
	}
	if got := firstLines(t, n, user, "INBOX/old"); len(got) != 1 || got[0] != "Subject: kept" {
		t.Errorf("INBOX/old holds %q", got)
	}
	if got := firstLines(t, n, user, "INBOX"); len(got) != 0 {
		t.Errorf("INBOX still holds %q", got)
	}
}
