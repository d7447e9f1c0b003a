package frontend_test

import (
	"strings"
	"testing"

	"powermail/node"
	"powermail/node/nodetest"
)

// A message whose stored copy fails its hash only at its end has had
// the rest of its RETR sent by then. The multi-line response must not
// end (no terminating "."), or the client keeps the damaged message as
// delivered: the connection is dropped instead.
func TestPOP3RetrOfABodyFailingItsHashIsNotEnded(t *testing.T) {
	c := nodetest.StartWith(t, 3, func(cfg *node.Config) { cfg.FaultInjection = true })
	const user = "corrupt@example.com"
	c.AddMailboxes("pw", user)
	raw := "Subject: big\r\n\r\n" + strings.Repeat("a line of the body\r\n", 10000)
	c.Deliver(0, raw, user)
	i := damageFirstReplica(t, c, user)

	_, addr := pop3Serve(t, c.Nodes[i], pop3TestAuth(c.Nodes[i], true), pop3TestConfig(), false)
	cl := pop3Dial(t, addr)
	cl.login(user, "pw")
	cl.send("RETR 1")
	if first, err := cl.tp.R.ReadString('\n'); err != nil || !strings.HasPrefix(first, "+OK") {
		return // refused before the message: fine
	}
	for {
		line, err := cl.tp.R.ReadString('\n')
		if err != nil {
			return // cut: the client drops what it got
		}
		if line == ".\r\n" {
			t.Fatal("RETR of a body that failed its hash ended as a whole message")
		}
	}
}

// damageFirstReplica damages, behind valid chunk checksums, the copy of
// the body of user's only message held by the replica a read tries
// first (c needs node.Config.FaultInjection), and returns that
// replica's index in c.Nodes.
func damageFirstReplica(t *testing.T, c *nodetest.Cluster, user string) int {
	t.Helper()
	msgs, err := c.Nodes[0].State().Messages(user, "INBOX", 0, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages: %v %v", msgs, err)
	}
	rec, err := c.Nodes[0].State().Body(msgs[0].Hash)
	if err != nil {
		t.Fatal(err)
	}
	i := int(rec.Replicas[0][1] - '1') // "n2" is c.Nodes[1]
	c.Admin(i, "POST", "/v1/fault/damage/"+msgs[0].Hash+"?keep_crc=1", "")
	return i
}
