package node

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/fsm"
)

// Mail for an address in UTF-8 goes out with SMTPUTF8 declared to a
// server that offers it, and so does an ASCII envelope whose header
// section is in UTF-8 (RFC 6531 §3.4, RFC 6532); plain mail does not
// declare it.
func TestQueueDeclaresSMTPUTF8WhereTheMailNeedsIt(t *testing.T) {
	s := startSinkWith(t, func(srv *smtp.Server) { srv.EnableSMTPUTF8 = true }, nil)
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "intl@example.com", Targets: []string{"用户@elsewhere.net"}})
	sendVia(t, l, "a@example.com", "Subject: plain\r\n\r\nhi\r\n", "intl@example.com")
	sendVia(t, l, "a@example.com", "Subject: Grüße\r\n\r\nhi\r\n", "out@example.com")
	sendVia(t, l, "a@example.com", "Subject: plain\r\n\r\nGrüße im Text\r\n", "out@example.com")
	waitFor(t, 10*time.Second, "three sent", func() bool { return len(s.messages()) == 3 })
	want := map[string]bool{"plain to 用户@elsewhere.net": true, "Grüße to x@elsewhere.net": true, "plain to x@elsewhere.net": false}
	for _, m := range s.messages() {
		subject := "plain"
		if strings.Contains(m.data, "Subject: Grüße") {
			subject = "Grüße"
		}
		key := subject + " to " + m.to[0]
		if w, ok := want[key]; !ok || w != m.utf8 {
			t.Errorf("%s: SMTPUTF8 %v", key, m.utf8)
		}
	}
}

// A server that does not offer SMTPUTF8 is never sent an address in
// UTF-8 (RFC 6531 §3.2): that recipient is returned to the sender (5.6.7),
// the others in the same message are sent. A Unicode domain goes as its
// A-label, and needs nothing.
func TestQueueReturnsUTF8AddressesToAServerWithoutSMTPUTF8(t *testing.T) {
	s := newSink(t)
	c := queueCluster(t, s, nil)
	l := c.leader(time.Second)
	mustApply(t, l, &fsm.ForwardAdd{Address: "mixed@example.com",
		Targets: []string{"用户@elsewhere.net", "y@elsewhere.net"}})
	sendVia(t, l, "a@example.com", "Subject: plain\r\n\r\nhi\r\n", "mixed@example.com")
	dsn := onlyDSN(t, c, l)
	wantAll(t, dsn, "Status: 5.6.7", "utf-8; ", "Action: failed")
	got := map[string]bool{}
	for _, m := range s.messages() {
		if m.utf8 {
			t.Errorf("SMTPUTF8 declared to a server without it")
		}
		for _, r := range m.to {
			got[r] = true
		}
	}
	if len(got) != 1 || !got["y@elsewhere.net"] {
		t.Fatalf("sent to %v", got)
	}
	if w := wireAddress("a@bücher.example"); w != "a@xn--bcher-kva.example" {
		t.Fatalf("wire form %q", w)
	}
}
