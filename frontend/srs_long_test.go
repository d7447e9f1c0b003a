package frontend

import (
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// waitDeliveries waits until f holds n deliveries and returns them.
func waitDeliveries(t *testing.T, f *fakeDeliverer, n int) []delivery {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(f.allDeliveries()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d deliveries arrived", len(f.allDeliveries()), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f.allDeliveries()
}

// A list or VERP sender (61 octets here) makes an SRS address whose
// local part is past RFC 5321 §4.5.3.1.1's 64 octets. It is minted all
// the same (as libsrs2 and postsrsd do; node/QUEUE.md, "SRS0"): mail
// forwarded over SMTP leaves with it, and a bounce sent to it over SMTP
// from the null sender reaches the original sender. Both ways over real
// SMTP through a real node and its queue.
func TestForwardOfALongSenderGoesOutAndItsBounceComesBack(t *testing.T) {
	t.Run("VERP", func(t *testing.T) {
		forwardAndBounce(t, "bounces+1234567-abcd-user=example.org@em1234.mail.example.net", "em1234.mail.example.net")
	})
	// A sender near the 254 octets of a path makes an SRS address past
	// them, which the RCPT of its bounce must still take: it is one of
	// ours, its hash is checked, and refusing it loses the bounce.
	dom := strings.Repeat("d", 60) + "." + strings.Repeat("e", 60) + "." + strings.Repeat("f", 56) + ".example" // 250 octets with the local part
	t.Run("NearThePathLimit", func(t *testing.T) {
		forwardAndBounce(t, strings.Repeat("v", 64)+"@"+dom, dom)
	})
}

func forwardAndBounce(t *testing.T, sender, senderDomain string) {
	far := newFakeDeliverer()
	far.set(func(f *fakeDeliverer) {
		f.directory["x@elsewhere.net"] = []string{"x@elsewhere.net"}
		f.directory[sender] = []string{sender}
	})
	_, farAddr := startServer(t, testConfig(), far)
	c := nodetest.StartWith(t, 1, func(cfg *node.Config) {
		cfg.Queue = node.QueueConfig{Hostname: "mx.example.com", SRSDomain: "example.com", Interval: 50 * time.Millisecond,
			RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond, DialTimeout: time.Second,
			DestOverride: map[string]string{"elsewhere.net": farAddr, senderDomain: farAddr}}
	})
	c.AddMailboxes("pw", "alice@example.com")
	c.Apply(&fsm.ForwardAdd{Address: "out@example.com", Targets: []string{"x@elsewhere.net"}})
	_, mx := startServer(t, testConfig(), c.Nodes[0])

	cl := dial(t, mx)
	cl.ehlo()
	r := cl.transaction(sender, []string{"out@example.com"}, "From: list <"+sender+">\r\nSubject: news\r\n\r\nnews\r\n")
	checkReply(t, "DATA of the forward", r, 250, "2.0.0")
	out := waitDeliveries(t, far, 1)[0]
	srs := out.msg.From
	local := srs[:strings.LastIndexByte(srs, '@')]
	if !strings.HasPrefix(srs, "SRS0=") || !strings.HasSuffix(srs, "="+senderDomain+"="+sender[:strings.LastIndexByte(sender, '@')]+"@example.com") ||
		len(local) != len(sender)+17 {
		t.Fatalf("forwarded with the envelope sender %q", srs)
	}

	bounce := "From: MAILER-DAEMON@elsewhere.net\r\nSubject: Undelivered Mail\r\n\r\nx@elsewhere.net: no such user\r\n"
	b := dial(t, mx)
	b.ehlo()
	r = b.transaction("", []string{srs}, bounce)
	checkReply(t, "DATA of the bounce", r, 250, "2.0.0")
	back := waitDeliveries(t, far, 2)[1]
	if back.msg.From != "" || len(back.msg.Mailboxes) != 1 || back.msg.Mailboxes[0] != sender ||
		!strings.Contains(string(back.body), "x@elsewhere.net: no such user") {
		t.Fatalf("the bounce arrived as %+v:\n%s", back.msg, back.body)
	}
}

// An address elsewhere may have a local part past 64 octets, as the
// reply addresses of notification services do (a token per thread). An
// authenticated user's reply to one is sent, not refused as a mailbox
// of ours that does not exist. Submitted over SMTP to a real node, sent
// by its queue to a real server.
func TestSubmissionToALongLocalPartElsewhereIsSent(t *testing.T) {
	reply := "reply+" + strings.Repeat("AbCdEf0123", 8) + "@reply.far.test"
	far := newFakeDeliverer()
	far.set(func(f *fakeDeliverer) { f.directory[strings.ToLower(reply)] = []string{reply} })
	_, farAddr := startServer(t, testConfig(), far)
	c := nodetest.StartWith(t, 1, func(cfg *node.Config) {
		cfg.Queue = node.QueueConfig{Hostname: "mx.example.com", Interval: 50 * time.Millisecond,
			RetryMin: 100 * time.Millisecond, RetryMax: 300 * time.Millisecond, DialTimeout: time.Second,
			DestOverride: map[string]string{"reply.far.test": farAddr}}
	})
	c.AddMailboxes("pw-alice", "alice@example.com")
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])
	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")
	r := cl.transaction("alice@example.com", []string{reply}, "From: alice@example.com\r\nSubject: Re: issue\r\n\r\nLooks good.\r\n")
	checkReply(t, "DATA", r, 250, "2.0.0")
	got := waitDeliveries(t, far, 1)[0]
	if got.msg.From != "alice@example.com" || len(got.msg.Mailboxes) != 1 || got.msg.Mailboxes[0] != reply {
		t.Fatalf("arrived as %+v", got.msg)
	}
}
