package frontend_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"powermail/frontend"
	"powermail/node/nodetest"
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

// TestIMAPIdleDoneAnyCase: IDLE ends at "done" in any case. RFC 9051
// section 9 makes every alphabetic character of the syntax
// case-insensitive, DONE included (RFC 2177 section 3); the library took
// only "DONE", answered BAD to the rest and left the client unsure
// whether it was still idling.
func TestIMAPIdleDoneAnyCase(t *testing.T) {
	c := nodetest.Start(t, 1)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{PollInterval: time.Second}, true)
	user := imapNewAddr(t)
	c.AddMailboxes(imapPassword, user)
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	for i, done := range []string{"done", "Done", "DONE"} {
		tag := fmt.Sprintf("i%d", i)
		fmt.Fprintf(r.c, "%s IDLE\r\n", tag)
		if l := r.line(); !strings.HasPrefix(l, "+ ") {
			t.Fatalf("IDLE: %q", l)
		}
		c.Deliver(0, imapTestMsg(fmt.Sprintf("idle %d", i), "x"), user)
		if l, want := r.line(), fmt.Sprintf("* %d EXISTS", i+1); l != want {
			t.Fatalf("in IDLE: %q, want %q", l, want)
		}
		fmt.Fprintf(r.c, "%s\r\n", done)
		if l := r.line(); !strings.HasPrefix(l, tag+" OK") {
			t.Fatalf("IDLE ended by %q: %q, want OK", done, l)
		}
	}
	r.want("NOOP", "")
}
