package frontend

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// A recipient that asks NOTIFY=SUCCESS gets its sender a "delivered" DSN
// (RFC 3461, RFC 3464) once the message is committed, with the envelope
// ID and ORCPT echoed; a forward to several mailboxes reports
// "expanded". Recipients that did not ask, and the null sender, get none.
func TestSuccessNoticeOverSMTP(t *testing.T) {
	c := nodetest.Start(t, 3)
	c.AddMailboxes("pw", "alice@example.com", "bob@example.com", "carol@example.com")
	c.Apply(&fsm.ForwardAdd{Address: "team@example.com", Targets: []string{"bob@example.com", "carol@example.com"}})
	_, addr := startServer(t, testConfig(), c.Nodes[1])
	cl := dial(t, addr)
	cl.ehlo()
	cl.expect("MAIL FROM:<alice@example.com> ENVID=QQ314159", 250, "2.0.0")
	cl.expect("RCPT TO:<bob@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob@example.com", 250, "2.0.0")
	cl.expect("RCPT TO:<carol@example.com> NOTIFY=FAILURE", 250, "2.0.0")
	cl.expect("RCPT TO:<team@example.com> NOTIFY=SUCCESS", 250, "2.0.0")
	checkReply(t, "DATA", cl.data("Subject: quarterly figures\r\n\r\nAttached.\r\n"), 250, "2.0.0")

	// Neither of these asks for a notice that can be sent.
	cl.expect("MAIL FROM:<>", 250, "2.0.0")
	cl.expect("RCPT TO:<bob@example.com> NOTIFY=SUCCESS", 250, "2.0.0")
	checkReply(t, "DATA", cl.data("Subject: from nobody\r\n\r\nx\r\n"), 250, "2.0.0")
	checkReply(t, "plain", cl.transaction("alice@example.com", []string{"bob@example.com"}, "Subject: no notice\r\n\r\nx\r\n"), 250, "2.0.0")

	dsn := waitInbox(t, c.Nodes[0], "alice@example.com", 1)[0]
	for _, want := range []string{
		"Subject: Successful Mail Delivery Report", "multipart/report; report-type=delivery-status",
		"Original-Envelope-Id: QQ314159",
		"Original-Recipient: rfc822; Bob@example.com\r\nFinal-Recipient: rfc822; bob@example.com\r\nAction: delivered\r\nStatus: 2.0.0",
		"Final-Recipient: rfc822; team@example.com\r\nAction: expanded\r\nStatus: 2.0.0",
	} {
		if !strings.Contains(dsn, want) {
			t.Errorf("the notice lacks %q:\n%s", want, dsn)
		}
	}
	// Anyone may ask on port 25, naming any sender: the notice returns
	// nothing of what the asker wrote.
	if strings.Contains(dsn, "quarterly figures") || strings.Contains(dsn, "text/rfc822-headers") {
		t.Errorf("a notice asked for over port 25 returns the original:\n%s", dsn)
	}
	if strings.Contains(dsn, "Final-Recipient: rfc822; carol@example.com") {
		t.Errorf("carol did not ask for a notice:\n%s", dsn)
	}
	time.Sleep(time.Second) // any notice for the other transactions would be in by now
	if got := waitInbox(t, c.Nodes[0], "alice@example.com", 1); len(got) != 1 {
		t.Fatalf("alice has %d notices, want 1", len(got))
	}
}

// waitInbox waits until box holds at least want messages, and returns
// the bodies of all of them.
func waitInbox(t *testing.T, n *node.Node, box string, want int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		msgs, err := n.State().Messages(box, "INBOX", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) >= want {
			var out []string
			for _, m := range msgs {
				rd, err := n.OpenBody(ctx, m.Hash)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(rd)
				rd.Close()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, string(b))
			}
			return out
		}
		if ctx.Err() != nil {
			t.Fatalf("%s holds %d messages, want %d", box, len(msgs), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// What a transaction passes to the queue for each external target: the
// NOTIFY and ORCPT of the RCPT that reached it (of several, every notice
// any asked), and no SUCCESS past an expansion to several targets (RFC
// 3461 §6.2.7.3). A transaction
// without DSN parameters asks nothing of them; over SMTP its RCPTs that
// reached mailboxes are listed for a notice about refusals at commit,
// and over SMTP and LMTP those that left a full member out.
func TestDSNRequestForForwardedTargets(t *testing.T) {
	tx := &txn{envID: "E1", ret: "HDRS", external: []string{"x@far.net", "y@far.net", "z@far.net"}, rcpts: []rcptEntry{
		{addr: "alias@example.com", ext: []string{"x@far.net"}, notify: []string{"SUCCESS", "FAILURE"}, orcpt: "rfc822; Alias@example.com"},
		{addr: "list@example.com", boxes: []string{"bob@example.com"}, ext: []string{"y@far.net"}, notify: []string{"SUCCESS"}},
		{addr: "team@example.com", ext: []string{"y@far.net", "z@far.net"}, notify: []string{"DELAY", "SUCCESS"}},
	}}
	req := tx.dsnRequest(true)
	want := []node.ForwardDSN{
		{Notify: "SUCCESS,FAILURE", ORCPT: "rfc822; Alias@example.com"},
		{Notify: "DELAY"}, // list@'s NEVER (its SUCCESS was reported) and team@'s DELAY
		{Notify: "DELAY"},
	}
	if req == nil || req.EnvID != "E1" || req.Ret != "HDRS" || !slices.Equal(req.Forwarded, want) || len(req.Success) != 3 {
		t.Fatalf("request %+v", req)
	}
	if len(req.Failure) != 1 || req.Failure[0].Address != "list@example.com" || req.Failure[0].Notify != "SUCCESS" {
		t.Fatalf("failure list %+v, want the one RCPT that reached a mailbox", req.Failure)
	}
	if req := tx.dsnRequest(false); len(req.Failure) != 0 {
		t.Fatalf("LMTP asks for a failure notice about %+v", req.Failure)
	}
	plain := &txn{external: []string{"x@far.net"}, rcpts: []rcptEntry{{addr: "alias@example.com", ext: []string{"x@far.net"}}}}
	if req := plain.dsnRequest(true); req != nil {
		t.Fatalf("no DSN parameters, yet a request %+v", req)
	}
	// Without parameters, an SMTP RCPT that reached a mailbox is listed
	// for a failure notice about a refusal at commit, and nothing else.
	plain.rcpts = append(plain.rcpts, rcptEntry{addr: "bob@example.com", boxes: []string{"bob@example.com"}})
	req = plain.dsnRequest(true)
	if req == nil || len(req.Failure) != 1 || req.Failure[0].Notify != "" || len(req.Forwarded) != 0 || len(req.Success) != 0 {
		t.Fatalf("plain SMTP request %+v", req)
	}
	if req := plain.dsnRequest(false); req != nil {
		t.Fatalf("plain LMTP request %+v", req)
	}
	// A RCPT that left a full member out is listed over either
	// protocol, also when it reached no mailbox: no reply names the
	// member.
	plain.rcpts = append(plain.rcpts, rcptEntry{addr: "out@example.com", ext: []string{"x@far.net"}, full: []string{"carol@example.com"}, fullMore: 2})
	for _, oneReply := range []bool{true, false} {
		req = plain.dsnRequest(oneReply)
		last := req.Failure[len(req.Failure)-1]
		if req.PerRecipient == oneReply || last.Address != "out@example.com" || !slices.Equal(last.Full, []string{"carol@example.com"}) || last.FullMore != 2 {
			t.Errorf("request (one reply: %v) %+v", oneReply, req)
		}
	}
	// Its one outside target is not asked for SUCCESS: the address
	// expanded, and that was reported.
	if f := (rcptEntry{ext: []string{"x@far.net"}, full: []string{"carol@example.com"}, notify: []string{"SUCCESS"}}).forwardDSN(); f.Notify != "NEVER" {
		t.Errorf("outside target of a list that left a full member out asked %q, want NEVER", f.Notify)
	}
}
