package frontend

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"powermail/node/nodetest"
)

// A client that vanishes in the middle of DATA was never answered, so
// nothing may be stored: the sender retries, and a truncated copy in the
// mailbox would be a message nobody sent (RFC 5321 §4.2.5, Promise 1).
// go-smtp's data reader reports the lost connection as
// io.ErrUnexpectedEOF, which a reader of the body must not take for the
// end of a short message.
func TestDisconnectMidDataStoresNothing(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw", "alice@example.com")
	srv, addr := startServer(t, testConfig(), c.Nodes[0])
	cl := dial(t, addr)
	cl.ehlo()
	cl.begin("alice@example.com")
	cl.expect("DATA", 354, "")
	cl.write("Subject: half a message\r\n\r\nthe first half, and then")
	time.Sleep(50 * time.Millisecond)
	cl.conn.Close()

	onlyWholeStored(t, c, srv, addr)
}

// onlyWholeStored waits until the cut transaction was judged (451 4.4.2:
// its Deliver has returned), then sends a whole message, so that there is
// something to wait for, and checks that alice holds only that one.
func onlyWholeStored(t *testing.T, c *nodetest.Cluster, srv *SMTPServer, addr string) {
	t.Helper()
	aborted := srv.metrics.replies.WithLabelValues(cmdData, "451", "4.4.2")
	for deadline := time.Now().Add(5 * time.Second); testutil.ToFloat64(aborted) < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the cut transaction was never answered 451 4.4.2")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cl := dial(t, addr)
	cl.ehlo()
	checkReply(t, "DATA", cl.transaction("s@remote.test", []string{"alice@example.com"}, "Subject: whole\r\n\r\nx\r\n"), 250, "2.0.0")
	got := waitInbox(t, c.Nodes[0], "alice@example.com", 1)
	if len(got) != 1 {
		for _, m := range got {
			t.Logf("stored: %q", m)
		}
		t.Fatalf("alice holds %d messages, want only the whole one", len(got))
	}
}

// A hang-up inside a BDAT LAST chunk: go-smtp copies the chunk through
// a limited reader, which reports a lost connection as the chunk's end
// (io.EOF), and then closes the message's pipe as if the chunk were
// whole. Nothing may be stored (RFC 3030 §2: a chunk is exactly its
// octet count), neither the part that arrived nor, when none did, an
// empty message.
func TestDisconnectMidBDATLastStoresNothing(t *testing.T) {
	for _, tc := range []struct{ name, first, last string }{
		{"part of the chunk", "BDAT 5\r\nhello", "BDAT 1000 LAST\r\nSubject: half a message\r\n\r\nthe first half, and then"},
		{"none of the chunk", "", "BDAT 1000 LAST\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := nodetest.Start(t, 1)
			c.AddMailboxes("pw", "alice@example.com")
			srv, addr := startServer(t, testConfig(), c.Nodes[0])
			cl := dial(t, addr)
			cl.ehlo()
			cl.begin("alice@example.com")
			if tc.first != "" {
				cl.write(tc.first)
				checkReply(t, "first chunk", cl.read(), 250, "2.0.0")
			}
			cl.write(tc.last)
			time.Sleep(50 * time.Millisecond)
			cl.conn.Close()
			onlyWholeStored(t, c, srv, addr)
		})
	}
}
