package frontend_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node"
	"powermail/node/nodetest"
)

// A POP3 client that deletes every message of a maildrop whose UIDs have
// more gaps than one command may carry UID ranges (fsm.MaxUIDRanges: mail
// deleted here and there over the years) gets +OK at QUIT, and the
// messages are gone. It used to get -ERR [SYS/TEMP] at every QUIT, and
// downloaded the same messages again in every session.
func TestPOP3QuitDeletesAcrossManyGaps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := nodetest.Start(t, 3)
	box := "gaps@example.com"
	ctx, n, uids := manyMessages(t, c, box)

	// Every odd UID expunged a few thousand at a time: 2^14 messages,
	// each alone.
	odd := slices.DeleteFunc(uids(), func(u uint32) bool { return u%2 == 0 })
	for chunk := range slices.Chunk(odd, fsm.MaxUIDRanges/2) {
		if _, err := n.Expunge(ctx, box, "INBOX", chunk, false); err != nil {
			t.Fatal(err)
		}
	}
	left := len(uids())
	if left <= fsm.MaxUIDRanges {
		t.Fatalf("%d messages left", left)
	}

	cfg := pop3TestConfig()
	cfg.ServerID = c.Nodes[2].ID()
	_, addr := pop3Serve(t, c.Nodes[2], pop3TestAuth(c.Nodes[2], true), cfg, false)
	cl := pop3Dial(t, addr)
	cl.login(box, "pw")
	// Pipelined, with the replies read as they come (RFC 2449 §6.6).
	var cmds strings.Builder
	for i := 1; i <= left; i++ {
		fmt.Fprintf(&cmds, "DELE %d\r\n", i)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := cl.conn.Write([]byte(cmds.String()))
		errc <- err
	}()
	for i := 1; i <= left; i++ {
		if r := cl.readLine(); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("DELE %d: %q", i, r)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if r := cl.cmd("QUIT"); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("QUIT after DELE of %d messages: %q", left, r)
	}
	if got := uids(); len(got) != 0 {
		t.Errorf("%d messages left after QUIT", len(got))
	}
}

// manyMessages gives box (created with password "pw") an INBOX of 2^15
// messages, one body doubled by COPY, through the cluster's first node,
// and a function listing their UIDs.
func manyMessages(t *testing.T, c *nodetest.Cluster, box string) (context.Context, *node.Node, func() []uint32) {
	t.Helper()
	c.AddMailboxes("pw", box)
	n := c.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c.Deliver(len(c.Nodes)-1, "Subject: x\r\n\r\nx\r\n", box)
	uids := func() []uint32 {
		v, err := n.View(ctx, box, "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		out := make([]uint32, len(v.Messages))
		for i, m := range v.Messages {
			out[i] = m.UID
		}
		return out
	}
	for range 15 {
		if _, err := n.Copy(ctx, box, "INBOX", "INBOX", uids(), false); err != nil {
			t.Fatal(err)
		}
	}
	return ctx, n, uids
}

// A FETCH that sets \Seen on a folder read here and there (every other
// message seen: more runs of unseen ones than one command carries) marks
// them all and answers OK. It used to get NO, and the client could not
// read its mail.
func TestIMAPFetchSetsSeenAcrossManyRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster with 2^15 messages")
	}
	c := nodetest.Start(t, 1)
	box := "readhere@example.com"
	ctx, n, uids := manyMessages(t, c, box)
	even := slices.DeleteFunc(uids(), func(u uint32) bool { return u%2 != 0 })
	for chunk := range slices.Chunk(even, fsm.MaxUIDRanges/2) {
		if _, err := n.StoreFlags(ctx, box, "INBOX", chunk, node.FlagsAdd, []string{`\Seen`}); err != nil {
			t.Fatal(err)
		}
	}
	addr := startIMAP(t, n, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, "")
	r.ok(`LOGIN "` + box + `" "pw"`)
	r.ok("SELECT INBOX")
	r.send("f1 FETCH 1:* (BODY[HEADER.FIELDS (SUBJECT)])\r\n")
	if _, st := r.tagged("f1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("FETCH without PEEK of every message: %q", st)
	}
	v, err := n.View(ctx, box, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range v.Messages {
		if !slices.Contains(m.Flags, `\Seen`) {
			t.Fatalf("UID %d not \\Seen after the FETCH", m.UID)
		}
	}
}
