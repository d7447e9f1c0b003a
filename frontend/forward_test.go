package frontend

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"

	"powermail/node"
)

// A forward to another provider is accepted at RCPT and handed to Deliver
// as External, in the same call as the local mailboxes: the one commit
// that makes the 250 true for both.
func TestForwardOutsideIsQueuedInTheSameDelivery(t *testing.T) {
	f := newFakeDeliverer()
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	r := c.transaction("s@remote.test", []string{"out@example.com", "fwd@example.com", "alice@example.com"}, "Subject: x\r\n\r\nhi\r\n")
	checkReply(t, "DATA", r, 250, "2.0.0")
	d := f.lastDelivery(t)
	if !slices.Equal(d.msg.Mailboxes, []string{"carol@example.com", "alice@example.com"}) ||
		!slices.Equal(d.msg.External, []string{"x@elsewhere.net", "y@elsewhere.net"}) || d.msg.From != "s@remote.test" ||
		d.msg.Submitted {
		t.Fatalf("delivery %+v", d.msg) // relayed mail is never marked submitted (DKIM, SRS)
	}
}

// If Deliver reports no queue entry for external targets, the sender
// must not get a 250 for a forward-only transaction.
func TestForwardNotQueuedIsNotAcknowledged(t *testing.T) {
	f := newFakeDeliverer()
	f.deliverHook = func(_ context.Context, _ node.Message, body io.Reader) (node.DeliveryResult, error) {
		_, err := io.Copy(io.Discard, body)
		return node.DeliveryResult{}, err
	}
	_, addr := startServer(t, testConfig(), f)
	c := dial(t, addr)
	c.ehlo()
	r := c.transaction("s@remote.test", []string{"out@example.com"}, "x\r\n")
	if r.code == 250 {
		t.Fatalf("acknowledged an unqueued forward: %v", r)
	}
}

// Accepting forwards opens no relay: any address outside the hosted
// domains is refused whatever the envelope, including addresses that look
// like SRS or source routes.
func TestNoOpenRelayWithForwarding(t *testing.T) {
	_, addr := startServer(t, testConfig(), newFakeDeliverer())
	c := dial(t, addr)
	c.ehlo()
	for _, from := range []string{"", "out@example.com", "alice@example.com", "x@elsewhere.net"} {
		c.expect("MAIL FROM:<"+from+">", 250, "2.0.0")
		for _, rcpt := range []string{"x@elsewhere.net", "SRS0=abcd=AB=elsewhere.net=x@elsewhere.net", "out@example.com@elsewhere.net", "\"x@example.com\"@elsewhere.net"} {
			c.expect(fmt.Sprintf("RCPT TO:<%s>", rcpt), 550, "5.7.1")
		}
		c.expect("RSET", 250, "")
	}
}
