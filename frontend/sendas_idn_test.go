package frontend

import (
	"strings"
	"testing"

	"powermail/fsm"
	"powermail/node/nodetest"
)

// A user of an internationalised domain may name her own address with
// the domain's U-labels under SMTPUTF8 (RFC 6531), in the envelope and
// in From:, as she may her alias's: the directory holds the A-labels,
// and both spellings are one address. Her own address was refused in
// the Unicode form (the own-address check parsed it without converting
// the domain) while an alias of hers in that form passed. Someone
// else's address in either form stays refused.
func TestSubmissionOwnAddressWithUnicodeDomain(t *testing.T) {
	c := nodetest.Start(t, 1)
	c.Apply(&fsm.DomainAdd{Name: "xn--bcher-kva.example"})
	c.AddMailboxes("pw-alice", "alice@xn--bcher-kva.example")
	c.AddMailboxes("pw-bob", "bob@xn--bcher-kva.example")
	c.Apply(&fsm.ForwardAdd{Address: "info@xn--bcher-kva.example", Targets: []string{"alice@xn--bcher-kva.example"}})
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])
	cl := authPlain(t, addr, "alice@xn--bcher-kva.example", "pw-alice", 235, "2.0.0")

	for _, tc := range []struct {
		from string
		code int
		enh  string
	}{
		{"info@bücher.example", 250, "2.0.0"},
		{"alice@xn--bcher-kva.example", 250, "2.0.0"},
		{"alice@bücher.example", 250, "2.0.0"},
		{"Alice@BÜCHER.example", 250, "2.0.0"},
		{"alice+x@bücher.example", 250, "2.0.0"},
		{"bob@bücher.example", 553, "5.7.1"},
		{"bob@xn--bcher-kva.example", 553, "5.7.1"},
	} {
		r := cl.cmd("MAIL FROM:<" + tc.from + "> SMTPUTF8")
		if r.code != tc.code || !strings.HasPrefix(r.msg, tc.enh+" ") {
			t.Errorf("MAIL FROM:<%s>: %d %s, want %d %s", tc.from, r.code, r.msg, tc.code, tc.enh)
		}
		cl.expect("RSET", 250, "")
	}

	cl.expect("MAIL FROM:<alice@xn--bcher-kva.example> SMTPUTF8", 250, "2.0.0")
	cl.expect("RCPT TO:<bob@xn--bcher-kva.example>", 250, "2.0.0")
	r := cl.data("From: Alice <alice@bücher.example>\r\nSubject: x\r\n\r\nhi\r\n")
	checkReply(t, "DATA with From: her address in U-labels", r, 250, "2.0.0")

	cl.expect("MAIL FROM:<alice@xn--bcher-kva.example> SMTPUTF8", 250, "2.0.0")
	cl.expect("RCPT TO:<bob@xn--bcher-kva.example>", 250, "2.0.0")
	r = cl.data("From: Bob <bob@bücher.example>\r\nSubject: x\r\n\r\nhi\r\n")
	checkReply(t, "DATA with From: bob's address in U-labels", r, 550, "5.7.1")
}
