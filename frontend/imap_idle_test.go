package frontend_test

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
)

// TestIMAPIdleReportsHeldBackExpunge: an EXPUNGE held back because it
// was learned during FETCH (RFC 9051 section 7.5.1) is sent as soon as
// IDLE allows it, not at IDLE's next periodic poll.
func TestIMAPIdleReportsHeldBackExpunge(t *testing.T) {
	store, user := imapMemStore(t)
	for _, s := range []string{"one", "two"} {
		if err := store.Deliver(imapTestMsg(s, "x"), user); err != nil {
			t.Fatal(err)
		}
	}
	// A periodic poll far beyond the test's wait: only the held-back
	// EXPUNGE itself can show up in time.
	addr := startIMAP(t, store, frontend.IMAPConfig{PollInterval: time.Minute}, true)
	c := dialIMAP(t, imapSingle(addr), 0, user)
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Expunge(context.Background(), user, "INBOX", []uint32{1}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Fetch(imap.SeqSetNum(2), &imap.FetchOptions{Flags: true}).Collect(); err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-c.ev.expunge:
		t.Fatalf("EXPUNGE %d during FETCH", seq)
	default:
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case seq := <-c.ev.expunge:
		if seq != 1 {
			t.Errorf("EXPUNGE %d, want 1", seq)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("IDLE did not report the EXPUNGE held back during FETCH")
	}
	idle.Close()
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}
