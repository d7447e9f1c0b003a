package node

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
)

// deliverOut delivers body from a@example.com to the external targets
// with the DSN request req, as the SMTP frontend would.
func deliverOut(t *testing.T, n *Node, req *DSNRequest, targets ...string) {
	t.Helper()
	msg := Message{From: "a@example.com", External: targets, Received: time.Now(), Notify: req, Submitted: true}
	body := "Return-Path: <a@example.com>\r\nSubject: out\r\n\r\nhi\r\n" // as the frontend stores it
	if _, err := n.Deliver(ctxT(t, 10*time.Second), msg, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

// bodyText is the body of a message in n's store.
func bodyText(t *testing.T, n *Node, hash string) string {
	t.Helper()
	rd, err := n.openBody(ctxT(t, 5*time.Second), hash)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var b strings.Builder
	buf := make([]byte, 64<<10)
	for {
		k, err := rd.Read(buf)
		b.WriteString(string(buf[:k]))
		if err != nil {
			return b.String()
		}
	}
}

// onlyDSN waits for c's queue to empty, and a moment longer for any DSN
// in flight, then returns the one message a@example.com must hold.
func onlyDSN(t *testing.T, c *testCluster, l *Node) string {
	t.Helper()
	waitFor(t, 10*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	time.Sleep(500 * time.Millisecond)
	msgs := inbox(t, l, "a@example.com")
	if len(msgs) != 1 {
		t.Fatalf("a@example.com holds %d DSNs, want one", len(msgs))
	}
	return bodyText(t, l, msgs[0].Hash)
}

// wantAll fails the test for each of wants that dsn lacks.
func wantAll(t *testing.T, dsn string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn)
		}
	}
}

// The queue keeps each forwarded recipient's NOTIFY and ORCPT: a failure
// is reported only to a sender that did not say NEVER, with ENVID and
// ORCPT echoed and, for RET=FULL, the whole message returned (RFC 3461
// §4, RFC 3464 §2).
func TestQueueFailureDSNHonoursNotify(t *testing.T) {
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	deliverOut(t, c.follower(), &DSNRequest{Forwarded: []ForwardDSN{{Notify: "NEVER"}}}, "x@elsewhere.net")
	deliverOut(t, l, &DSNRequest{EnvID: "ENV-7", Ret: "FULL", Forwarded: []ForwardDSN{{Notify: "FAILURE", ORCPT: "rfc822; out@example.com"}}},
		"y@elsewhere.net")
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, "Original-Envelope-Id: ENV-7", "Original-Recipient: rfc822; out@example.com\r\nFinal-Recipient: rfc822; y@elsewhere.net\r\nAction: failed",
		"Content-Type: message/rfc822\r\n\r\nReturn-Path: <a@example.com>\r\nSubject: out\r\n\r\nhi\r\n\r\n--dsn-")
	if strings.Contains(dsn, "x@elsewhere.net") {
		t.Errorf("DSN reports the NOTIFY=NEVER recipient:\n%s", dsn)
	}
}

// A server that offers DSN gets the parameters and reports success
// itself; for one that does not, we send a "relayed" notice to a sender
// that asked for success (RFC 3461 §6.2.6.2).
func TestQueuePassesDSNOnOrReportsRelayed(t *testing.T) {
	plain, withDSN := newSink(t), startSink(t, true)
	c := queueCluster(t, plain, func(q *QueueConfig) { q.DestOverride["dsn.test"] = withDSN.addr })
	l := c.leader(time.Second)
	req := func(orcpt string) *DSNRequest {
		return &DSNRequest{EnvID: "ENV-9", Ret: "HDRS", Forwarded: []ForwardDSN{{Notify: "SUCCESS,FAILURE", ORCPT: orcpt}}}
	}
	deliverOut(t, l, req("rfc822; fwd@example.com"), "z@dsn.test")
	waitFor(t, 10*time.Second, "sent on", func() bool { return len(withDSN.messages()) == 1 })
	if data := withDSN.messages()[0].data; strings.Contains(data, "Return-Path") || !strings.Contains(data, "Subject: out") {
		t.Fatalf("sent on with our Return-Path, or without the message (RFC 5321 §4.4):\n%s", data)
	}
	got := withDSN.dsnParams()
	if !slices.Contains(got, "MAIL ENVID=ENV-9 RET=HDRS") || !slices.Contains(got, "RCPT z@dsn.test NOTIFY=[SUCCESS FAILURE] ORCPT=RFC822;fwd@example.com") {
		t.Fatalf("the DSN server got %q", got)
	}
	deliverOut(t, l, req(""), "x@elsewhere.net")
	waitFor(t, 10*time.Second, "relayed notice", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, "Final-Recipient: rfc822; x@elsewhere.net\r\nAction: relayed\r\nStatus: 2.0.0", "Original-Envelope-Id: ENV-9")
}

// A recipient refused for good is reported while another is still being
// retried, and the entry's final notice does not report it again.
func TestQueueFailureNoticeDoesNotWaitForTheRest(t *testing.T) {
	refusing, slow := newSink(t), newSink(t)
	refusing.set("550")
	slow.set("451")
	c := queueCluster(t, refusing, func(q *QueueConfig) { q.DestOverride["slow.net"] = slow.addr })
	l := c.leader(time.Second)
	deliverOut(t, l, nil, "x@elsewhere.net", "y@slow.net")
	waitFor(t, 10*time.Second, "the early notice", func() bool { return len(inbox(t, l, "a@example.com")) == 1 })
	if queueEmpty(c) {
		t.Fatal("the entry is done: the notice was not early")
	}
	early := bodyText(t, l, inbox(t, l, "a@example.com")[0].Hash)
	wantAll(t, early, "Final-Recipient: rfc822; x@elsewhere.net", "Action: failed")
	if strings.Contains(early, "y@slow.net") {
		t.Errorf("the early notice reports the pending recipient:\n%s", early)
	}
	slow.set("ok")
	waitFor(t, 10*time.Second, "queue empty", func() bool { return queueEmpty(c) })
	time.Sleep(500 * time.Millisecond)
	if n := len(inbox(t, l, "a@example.com")); n != 1 {
		t.Fatalf("a@example.com holds %d notices, want the early one only", n)
	}
}

// strangerVia delivers body as mail from anyone on port 25 is delivered
// (not submitted) to the forward's external target, naming a@example.com
// as its sender.
func strangerVia(t *testing.T, n *Node, req *DSNRequest, body string) {
	t.Helper()
	msg := Message{From: "a@example.com", External: []string{"x@elsewhere.net"}, Received: time.Now(), Notify: req}
	if _, err := n.Deliver(ctxT(t, 10*time.Second), msg, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
}

const strangerBody = "From: a@example.com\r\nSubject: cheap pills\r\nX-Payload: VISIT http://evil.example/ NOW\r\n\r\nBODY-PAYLOAD\r\n"

// Notices about mail that was not submitted go to a sender nobody
// vouched for: a success ("relayed") notice carries nothing of the
// original, and a failure its headers only, whatever RET asked.
func TestStrangersNoticesCarryNoContent(t *testing.T) {
	t.Run("relayed", func(t *testing.T) {
		s := newSink(t) // a next hop without DSN: the notice is ours to send
		c := queueCluster(t, s, nil)
		l := c.leader(time.Second)
		strangerVia(t, l, &DSNRequest{Forwarded: []ForwardDSN{{Notify: "SUCCESS"}}}, strangerBody)
		dsn := onlyDSN(t, c, l)
		wantAll(t, dsn, "Action: relayed")
		if strings.Contains(dsn, "X-Payload") || strings.Contains(dsn, "BODY-PAYLOAD") {
			t.Errorf("a relayed notice for a stranger carries the original:\n%s", dsn)
		}
	})
	t.Run("failed", func(t *testing.T) {
		s := newSink(t)
		s.set("550")
		c := queueCluster(t, s, nil)
		l := c.leader(time.Second)
		strangerVia(t, l, &DSNRequest{Ret: "FULL", Forwarded: []ForwardDSN{{Notify: "FAILURE"}}}, strangerBody)
		dsn := onlyDSN(t, c, l)
		wantAll(t, dsn, "Action: failed", "text/rfc822-headers", "Subject: cheap pills")
		if strings.Contains(dsn, "BODY-PAYLOAD") {
			t.Errorf("a failure notice for a stranger returns the whole message:\n%s", dsn)
		}
	})
}

// A non-ASCII address in a DSN is written as RFC 6533 §3 has it for a
// message/delivery-status part, address type utf-8 in utf-8-addr-xtext
// form, not mangled into question marks a reader cannot map back; and an
// ORCPT too long to write so within a line (RFC 5322 §2.1.1: 998
// octets; ORCPT may have 500 octets, each of them growing to three) is
// left out, as RFC 3464 §2.3.1 allows.
func TestQueueDSNWritesUTF8AddressesAsXtext(t *testing.T) {
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	deliverOut(t, l, &DSNRequest{Forwarded: []ForwardDSN{{Notify: "FAILURE", ORCPT: "utf-8; ünï@example.com"}}}, "jö@elsewhere.net")
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, `Original-Recipient: utf-8; \x{FC}n\x{EF}@example.com`, `Final-Recipient: utf-8; j\x{F6}@elsewhere.net`)

	long := "utf-8; " + strings.Repeat("ü", 240) + "@example.com"
	deliverOut(t, l, &DSNRequest{Forwarded: []ForwardDSN{{Notify: "FAILURE", ORCPT: long}}}, "x@elsewhere.net")
	waitFor(t, 10*time.Second, "second DSN", func() bool { return len(inbox(t, l, "a@example.com")) == 2 })
	for _, m := range inbox(t, l, "a@example.com") {
		dsn := bodyText(t, l, m.Hash)
		for _, line := range strings.Split(dsn, "\r\n") {
			if len(line) > 998 {
				t.Fatalf("a line of %d octets: %.80s...", len(line), line)
			}
		}
	}
}

// A failure notice quotes no line longer than RFC 5322 §2.1.1 allows (998
// octets), though the original may have one (the frontend takes DATA
// lines up to 4096 octets, and BDAT lines of any length): a receiver may
// refuse such a notice, and when the original was refused for that very
// line, its notice would be refused for it too and the sender never told.
// A long header line is cut; a message returned whole for RET=FULL is
// returned as its header section instead.
func TestQueueDSNQuotesNoOverlongLine(t *testing.T) {
	long := "X-Long: " + strings.Repeat("a", 1500) + "\r\n"
	body := "Return-Path: <a@example.com>\r\nSubject: out\r\n" + long + "\r\n" + strings.Repeat("b", 1200) + "\r\n"
	for _, submitted := range []bool{false, true} {
		t.Run(fmt.Sprint("submitted=", submitted), func(t *testing.T) {
			s := newSink(t)
			s.set("550")
			c := queueCluster(t, s, nil)
			l := c.leader(time.Second)
			msg := Message{From: "a@example.com", External: []string{"x@elsewhere.net"}, Received: time.Now(), Submitted: submitted,
				Notify: &DSNRequest{Ret: "FULL", Forwarded: []ForwardDSN{{Notify: "FAILURE"}}}}
			if _, err := l.Deliver(ctxT(t, 10*time.Second), msg, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
			dsn := onlyDSN(t, c, l)
			wantAll(t, dsn, "Action: failed", "Subject: out", "X-Long: aaaa", "Content-Type: text/rfc822-headers")
			for _, line := range strings.Split(dsn, "\r\n") {
				if len(line) > 998 {
					t.Fatalf("a line of %d octets: %.60s...", len(line), line)
				}
			}
		})
	}
}

// dsnAddress writes an ASCII address as rfc822, its local part quoted
// where go-smtp handed it over unquoted, and anything else as utf-8
// xtext (RFC 6533 §3).
func TestDSNAddressForms(t *testing.T) {
	for _, c := range []struct{ typ, addr, want string }{
		{"", "a+b=c@x.org", "rfc822; a+b=c@x.org"},
		{"", "john doe@x.org", `rfc822; "john doe"@x.org`},
		{"RFC822", "a@x.org", "rfc822; a@x.org"},
		{"utf-8", "a@x.org", "utf-8; a@x.org"},
		{"utf-8", "ü+=\\@x.org", `utf-8; \x{FC}\x{2B}\x{3D}\x{5C}@x.org`},
		{"", "日@x.org", `utf-8; \x{65E5}@x.org`},
	} {
		if got := dsnAddress(c.typ, c.addr); got != c.want {
			t.Errorf("dsnAddress(%q, %q) = %q, want %q", c.typ, c.addr, got, c.want)
		}
	}
}

// A notice that returns a header section in UTF-8 types it as RFC 6533
// has it, and says the part is 8bit; an ASCII one stays as it was.
func TestQueueDSNTypesAUTF8Original(t *testing.T) {
	s := newSink(t)
	s.set("550")
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	submitOut(t, l, "Subject: Grüße\r\n\r\nhi\r\n", "x@elsewhere.net")
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, "Content-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\nReturn-Path: <a@example.com>\r\nSubject: Grüße\r\n")
	for _, tc := range []struct {
		original string
		full     bool
		want     string
	}{
		{"Subject: a\r\n", false, "Content-Type: text/rfc822-headers"},
		{"Subject: a\r\n\r\nb\r\n", true, "Content-Type: message/rfc822"},
		{"Subject: a\r\n\r\nGrüße\r\n", true, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit"},
		{"Subject: Grüße\r\n\r\nb\r\n", true, "Content-Type: message/global\r\nContent-Transfer-Encoding: 8bit"},
	} {
		if got := returnedPartType(tc.original, tc.full); got != tc.want {
			t.Errorf("%q (full %v): %q, want %q", tc.original, tc.full, got, tc.want)
		}
	}
}

// A notice that its sender's mailbox refuses as it is committed (a
// folder out of UIDs, a mailbox being removed) is not retried, since a
// repeat under its delivery ID would get the same answer: the log says
// so, where it was dropped without a word.
func TestRefusedNoticeIsLogged(t *testing.T) {
	var buf strings.Builder
	n := &Node{log: slog.New(slog.NewTextHandler(&buf, nil))}
	n.logRefusedNotice("dsn-7-failed", fsm.DeliverResult{Rejected: map[string]string{"a@example.com": "folder_full"},
		Messages: map[string]string{"a@example.com": "folder INBOX has given its last UID"}})
	for _, want := range []string{"DSN refused", "dsn-7-failed", "a@example.com", "folder_full", "last UID"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q: %s", want, buf.String())
		}
	}
	buf.Reset()
	n.logRefusedNotice("dsn-8-failed", fsm.DeliverResult{UIDs: map[string]uint32{"a@example.com": 3}})
	if buf.Len() != 0 {
		t.Errorf("a notice delivered was logged: %s", buf.String())
	}
}
