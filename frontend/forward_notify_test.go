package frontend

import (
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// Two addresses of one message forward to the same external target,
// which is sent once. The first RCPT asked NOTIFY=NEVER, the second
// nothing (failure and delay notices, RFC 3461 §4.1): when the target
// refuses the message, the sender is told, because the second recipient
// asked it; the target took the first RCPT's NEVER, and the failure was
// reported to nobody. Over SMTP through a real node, its queue and a
// real refusing server.
func TestForwardTargetOfSeveralRecipientsTakesTheNotifyThatAsks(t *testing.T) {
	far := newFakeDeliverer()
	far.set(func(f *fakeDeliverer) { f.directory["s@far.test"] = []string{"s@far.test"} })
	_, farAddr := startServer(t, testConfig(), far)
	a := startProvider(t, "mx.a.test")
	a.routes["far.test"], a.routes["gone.test"] = farAddr, farAddr // x@gone.test is unknown there: 550
	a.c.AddMailboxes("pw", "keep@a.test")
	a.c.Apply(&fsm.ForwardAdd{Address: "quiet@a.test", Targets: []string{"x@gone.test"}})
	a.c.Apply(&fsm.ForwardAdd{Address: "team@a.test", Targets: []string{"x@gone.test"}})

	cl := dial(t, a.mx)
	cl.ehlo()
	cl.expect("MAIL FROM:<s@far.test>", 250, "2.0.0")
	cl.expect("RCPT TO:<quiet@a.test> NOTIFY=NEVER", 250, "2.0.0")
	cl.expect("RCPT TO:<team@a.test>", 250, "2.0.0")
	checkReply(t, "DATA", cl.data("From: s@far.test\r\nSubject: hi\r\n\r\nhi\r\n"), 250, "2.0.0")

	deadline := time.Now().Add(15 * time.Second)
	for len(far.allDeliveries()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no failure notice; queue holds %d entries", a.queueLen(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	n := far.allDeliveries()[0]
	if n.msg.From != "" || !strings.Contains(string(n.body), "Final-Recipient: rfc822; x@gone.test") ||
		!strings.Contains(string(n.body), "Action: failed") {
		t.Fatalf("notice from %q:\n%s", n.msg.From, n.body)
	}
}
