package frontend_test

import (
	"slices"
	"testing"

	"powermail/node/nodetest"
)

// RSET undoes what the session would commit at QUIT: the deletion marks
// (RFC 1939 §5) and the \Seen that RETR would set (pop3seen.go), as
// Dovecot's RSET forgets its seen updates. A client that downloaded a
// message it then could not keep says RSET and QUIT, and finds the
// message as it was, unread in webmail too; what it retrieves after the
// RSET is marked as usual.
func TestPOP3RsetForgetsRetrievedSeen(t *testing.T) {
	c := nodetest.Start(t, 1)
	const box = "rset@example.com"
	c.AddMailboxes("pw", box)
	for _, s := range []string{"one", "two", "three"} {
		c.Deliver(0, "Subject: "+s+"\r\n\r\n"+s+"\r\n", box)
	}
	_, addr := pop3Serve(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), pop3TestConfig(), false)
	cl := pop3Dial(t, addr)
	cl.login(box, "pw")
	cl.multi("RETR 1")
	cl.multi("RETR 2")
	cl.ok("DELE 2")
	cl.ok("RSET")
	cl.multi("RETR 3")
	cl.quit()

	v, err := c.Nodes[0].View(t.Context(), box, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var seen []bool
	for _, m := range v.Messages {
		seen = append(seen, slices.Contains(m.Flags, `\Seen`))
	}
	if want := []bool{false, false, true}; !slices.Equal(seen, want) {
		t.Errorf("after RETR 1, RETR+DELE 2, RSET, RETR 3, QUIT: seen %v, want %v", seen, want)
	}
}
