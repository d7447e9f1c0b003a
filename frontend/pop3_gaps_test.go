package frontend_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/fsm"
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
	c.AddMailboxes("pw", box)
	n := c.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// 2^15 messages (one body, doubled by COPY), then every odd UID
	// expunged a few thousand at a time: 2^14 messages, each alone.
	c.Deliver(1, "Subject: x\r\n\r\nx\r\n", box)
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
