package frontend

import (
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"powermail/node"
)

// TestSMTPAfterBodyStoreReopens: a real node whose body store failed on
// an I/O error refuses at MAIL (451 4.3.0) until the fault is gone and
// the node has reopened its store by itself (--body-store-reopen-interval);
// then the same SMTP session's next transaction gets 250, and the
// message's body is listed on R nodes, this one among them.
func TestSMTPAfterBodyStoreReopens(t *testing.T) {
	c, tog := failingStoreClusterWith(t, errorfs.ErrInjected, func(cfg *node.Config) {
		cfg.BodyStoreReopenInterval = time.Second
	})
	n2 := c.Nodes[1]
	_, addr := startServer(t, testConfig(), n2)
	cl := dial(t, addr)
	_ = cl.conn.SetDeadline(time.Now().Add(40 * time.Second)) // the session waits for the reopen
	cl.ehlo()
	cl.expect("MAIL FROM:<alice@remote.test>", 250, "2.0.0")
	cl.expect("RCPT TO:<bob@example.com>", 250, "2.0.0")
	tog.On()
	checkReply(t, "DATA as the store fails", cl.data("Subject: lost\r\n\r\nbody\r\n"), 451, "4.3.0")
	cl.expect("MAIL FROM:<alice@remote.test>", 451, "4.3.0") // not reopened before the interval
	tog.Off()

	deadline := time.Now().Add(20 * time.Second)
	for {
		r := cl.cmd("MAIL FROM:<alice@remote.test>")
		if r.code == 250 {
			break
		}
		checkReply(t, "MAIL while the store is failed", r, 451, "4.3.0")
		if time.Now().After(deadline) {
			t.Fatal("the node still refuses MAIL 20s after the fault ended")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cl.expect("RCPT TO:<bob@example.com>", 250, "2.0.0")
	checkReply(t, "DATA after the reopen", cl.data("Subject: two\r\n\r\nbody after the reopen\r\n"), 250, "2.0.0")

	if got := waitInbox(t, n2, "bob@example.com", 1); len(got) != 1 {
		t.Fatalf("bob's inbox reads %d messages", len(got))
	}
	msgs, err := n2.State().Messages("bob@example.com", "INBOX", 0, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("bob has %d messages (%v), want the one sent after the reopen", len(msgs), err)
	}
	s, err := n2.State().Settings()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := n2.State().Body(msgs[0].Hash)
	if err != nil || len(rec.Replicas) != s.Replicas || !slices.Contains(rec.Replicas, n2.ID()) {
		t.Fatalf("body listed on %v (%v); want %d replicas, %s among them", rec.Replicas, err, s.Replicas, n2.ID())
	}
}
