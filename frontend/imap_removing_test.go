package frontend_test

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node/nodetest"
)

// APPEND, COPY and MOVE into a mailbox being removed (a large `mailbox
// rm` is emptying it) are refused with NO [UNAVAILABLE]: what they
// stored would be removed with it.
func TestIMAPRefusesWritesIntoMailboxBeingRemoved(t *testing.T) {
	c := nodetest.Start(t, 3)
	user := "going@example.com"
	c.AddMailboxes(imapPassword, user)
	c.Deliver(0, "Subject: one\r\n\r\none\r\n", user)
	on := true
	c.Apply(&fsm.MailboxUpdate{Address: user, Removing: &on})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Nodes[1].Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	addr := startIMAP(t, c.Nodes[1], frontend.IMAPConfig{PollInterval: time.Second}, true)
	cl := dialIMAPAnon(t, addr)
	if err := cl.Login(user, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	raw := "Subject: appended\r\n\r\nx\r\n"
	cmd := cl.Append("INBOX", int64(len(raw)), nil)
	cmd.Write([]byte(raw))
	cmd.Close()
	_, err := cmd.Wait()
	wantIMAPCode(t, "APPEND", err, imap.ResponseCodeUnavailable)
	_, err = cl.Copy(imap.SeqSetNum(1), "Trash").Wait()
	wantIMAPCode(t, "COPY", err, imap.ResponseCodeUnavailable)
	_, err = cl.Move(imap.SeqSetNum(1), "Trash").Wait()
	wantIMAPCode(t, "MOVE", err, imap.ResponseCodeUnavailable)
}
