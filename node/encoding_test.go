package node

import (
	"bytes"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// TestDeliveriesUseTheClusterCommandEncoding delivers through a follower
// (which encodes the command and forwards it) with the setting a new
// cluster starts with, the newest encoding, and again after the setting
// is lowered to JSON. Each entry must carry the setting's encoding, and
// every node must apply both.
func TestDeliveriesUseTheClusterCommandEncoding(t *testing.T) {
	c := deliveryCluster(t)
	l, f := c.leader(5*time.Second), c.follower()
	ctx := ctxT(t, 20*time.Second)
	deliver := func(text string) {
		t.Helper()
		if err := f.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		msg := Message{From: "s@elsewhere.net", Mailboxes: []string{"a@example.com"}, Received: time.Now()}
		if _, err := f.Deliver(ctx, msg, bytes.NewReader([]byte(text))); err != nil {
			t.Fatal(err)
		}
	}
	deliver("Subject: one\r\n\r\nbinary\r\n")
	if enc := lastDeliverEncoding(t, l); enc != fsm.NewestEncoding {
		t.Fatalf("a new cluster's delivery was written with encoding %d, want %d", enc, fsm.NewestEncoding)
	}
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON}})
	deliver("Subject: two\r\n\r\njson\r\n")
	if enc := lastDeliverEncoding(t, l); enc != fsm.EncodingJSON {
		t.Fatalf("with the setting at JSON a delivery was written with encoding %d", enc)
	}
	for id, n := range c.nodes {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if msgs, err := n.State().Messages("a@example.com", "INBOX", 0, 0); err != nil || len(msgs) != 2 {
			t.Fatalf("%s holds %d messages (%v), want 2", id, len(msgs), err)
		}
	}
}

// lastDeliverEncoding returns the encoding byte of the newest Deliver
// entry in n's raft log.
func lastDeliverEncoding(t *testing.T, n *Node) byte {
	t.Helper()
	first, _ := n.logStore.FirstIndex()
	last, _ := n.logStore.LastIndex()
	for i := last; i >= first && i > 0; i-- {
		var e raft.Log
		if err := n.logStore.GetLog(i, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == raft.LogCommand && len(e.Data) >= 2 && fsm.CmdType(e.Data[0]) == fsm.CmdDeliver {
			return e.Data[1]
		}
	}
	t.Fatal("no Deliver entry in the log")
	return 0
}
