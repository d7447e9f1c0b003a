package frontend

import (
	"strings"
	"testing"

	"powermail/fsm"
	"powermail/node/nodetest"
)

// sendAsCluster is a one-node cluster whose directory gives alice
// aliases and near misses of aliases: info@ (shared with bob) and
// hello@example.org forward to her directly; sales@ only to bob; chain@
// reaches her only through info@; everything@example.net is a
// catch-all to her; bob's mailbox forwards a copy to her; team@ goes to
// bob and team+alice@ has no entry of its own; bob+alice@ and
// sales+alice@ forward to her, but under bob's mailbox and alias.
func sendAsCluster(t *testing.T) *nodetest.Cluster {
	t.Helper()
	c := nodetest.Start(t, 1)
	c.AddMailboxes("pw-alice", "alice@example.com")
	c.AddMailboxes("pw-bob", "bob@example.com")
	c.Apply(&fsm.DomainAdd{Name: "example.org"})
	c.Apply(&fsm.DomainAdd{Name: "example.net"})
	for _, fw := range []fsm.ForwardAdd{
		{Address: "info@example.com", Targets: []string{"bob@example.com", "Alice@Example.com"}},
		{Address: "hello@example.org", Targets: []string{"alice@example.com"}},
		{Address: "sales@example.com", Targets: []string{"bob@example.com"}},
		{Address: "chain@example.com", Targets: []string{"info@example.com"}},
		{Address: "@example.net", Targets: []string{"alice@example.com"}},
		{Address: "team@example.com", Targets: []string{"bob@example.com"}},
		{Address: "bob@example.com", Targets: []string{"alice@example.com"}, KeepCopy: true},
		{Address: "bob+alice@example.com", Targets: []string{"alice@example.com"}},
		{Address: "sales+alice@example.com", Targets: []string{"alice@example.com"}},
	} {
		c.Apply(&fw)
	}
	return c
}

// A user may send as an address whose forward names her mailbox among
// its targets, and as its +detail, in the envelope and in From: and
// Sender:; not as an alias of someone else, one that reaches her only
// through another forward, a catch-all's address, a mailbox that
// forwards to her, or a sub-address of someone else's mailbox or
// alias, even one whose own forward names her. A
// redirect (Resent-From: her alias, From: a stranger) stays refused.
func TestSubmissionSendsAsAnAlias(t *testing.T) {
	c := sendAsCluster(t)
	addr := startSubmission(t, c.Nodes[0], c.Nodes[0])
	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")

	for _, tc := range []struct {
		from string
		code int
		enh  string
	}{
		{"info@example.com", 250, "2.0.0"},
		{"INFO@example.com", 250, "2.0.0"},
		{"info+news@example.com", 250, "2.0.0"},
		{"hello@example.org", 250, "2.0.0"},
		{"sales@example.com", 553, "5.7.1"},      // bob's alias
		{"chain@example.com", 553, "5.7.1"},      // only through info@
		{"anyone@example.net", 553, "5.7.1"},     // a catch-all's address
		{"bob@example.com", 553, "5.7.1"},        // a mailbox forwarding to her
		{"bob+x@example.com", 553, "5.7.1"},      // and its +detail
		{"team+alice@example.com", 553, "5.7.1"}, // sub-address of bob's alias
		{"bob+alice@example.com", 553, "5.7.1"},  // bob's, though it forwards to her
		{"sales+alice@example.com", 553, "5.7.1"},
		{"nobody@example.com", 553, "5.7.1"},
	} {
		r := cl.cmd("MAIL FROM:<" + tc.from + ">")
		checkReply(t, "MAIL FROM:<"+tc.from+">", r, tc.code, tc.enh)
		cl.expect("RSET", 250, "")
	}

	for _, tc := range []struct {
		header string
		code   int
		status string
	}{
		{"From: Info <info@example.com>\r\n", 250, "2.0.0"},
		{"From: hello+x@example.org\r\nSender: alice@example.com\r\n", 250, "2.0.0"},
		{"From: info@example.com, alice@example.com\r\n", 250, "2.0.0"},
		{"From: sales@example.com\r\n", 550, "5.7.1"},
		{"From: Stranger <someone@example.net>\r\n", 550, "5.7.1"},
		{"From: info@example.com\r\nSender: sales@example.com\r\n", 550, "5.7.1"},
		{"Resent-From: info@example.com\r\nFrom: carol@elsewhere.net\r\n", 550, "5.7.1"}, // a redirect
	} {
		r := cl.transaction("alice@example.com", []string{"bob@example.com"}, tc.header+"Subject: x\r\n\r\nhi\r\n")
		if r.code != tc.code || !strings.HasPrefix(r.msg, tc.status) {
			t.Errorf("%q: %d %s, want %d %s", tc.header, r.code, r.msg, tc.code, tc.status)
		}
	}
	r := cl.transaction("info@example.com", []string{"friend@elsewhere.net"}, "From: info@example.com\r\nSubject: x\r\n\r\nhi\r\n")
	checkReply(t, "DATA as info@", r, 250, "2.0.0")
	entries, err := c.Nodes[0].State().QueueList("", 10)
	if err != nil || len(entries) != 1 || entries[0].From != "info@example.com" || !entries[0].Submitted {
		t.Fatalf("queue: %+v %v", entries, err)
	}

	// bob, whose mailbox info@ names too, may use it as well.
	bob := authPlain(t, addr, "bob@example.com", "pw-bob", 235, "2.0.0")
	bob.expect("MAIL FROM:<info@example.com>", 250, "2.0.0")
	bob.expect("RSET", 250, "")
	bob.expect("MAIL FROM:<hello@example.org>", 553, "5.7.1")
}

// With NoSendAsAliases (--submission-send-as-aliases=false) a user sends
// only as the mailbox, with or without a +detail: its alias is refused
// in the envelope and in From:.
func TestSubmissionSendAsAliasesOff(t *testing.T) {
	c := sendAsCluster(t)
	cfg := testConfig()
	cfg.Submission, cfg.NoSendAsAliases = true, true
	cfg.Auth = NewAuthenticator(c.Nodes[0], AuthConfig{AllowInsecure: true}, nil)
	_, addr := startServer(t, cfg, c.Nodes[0])
	cl := authPlain(t, addr, "alice@example.com", "pw-alice", 235, "2.0.0")

	cl.expect("MAIL FROM:<info@example.com>", 553, "5.7.1")
	cl.expect("MAIL FROM:<hello@example.org>", 553, "5.7.1")
	cl.expect("MAIL FROM:<alice+x@example.com>", 250, "2.0.0")
	cl.expect("RSET", 250, "")
	r := cl.transaction("alice@example.com", []string{"bob@example.com"}, "From: info@example.com\r\n\r\nhi\r\n")
	checkReply(t, "DATA with From: her alias", r, 550, "5.7.1")
	r = cl.transaction("alice@example.com", []string{"bob@example.com"}, "From: alice@example.com\r\n\r\nhi\r\n")
	checkReply(t, "DATA with From: her mailbox", r, 250, "2.0.0")
}
