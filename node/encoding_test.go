package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// TestDeliveriesUseTheClusterCommandEncoding delivers through a follower
// (which encodes the command and forwards it) in a cluster started at
// encoding 3, as the release before 4 started one (an encoding of 4 is
// never lowered), and again after the setting is lowered. Each entry must carry the newest encoding the setting and
// the command allow (binary; JSON3 with forwarded mail's DSN
// parameters, which below it are left out), and every node must apply
// all of them.
func TestDeliveriesUseTheClusterCommandEncoding(t *testing.T) {
	c := deliveryClusterWith(t, startAtEncoding3) // an encoding of 4 is never lowered
	l, f := c.leader(5*time.Second), c.follower()
	ctx := ctxT(t, 20*time.Second)
	deliver := func(text string, external ...string) {
		t.Helper()
		if err := f.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		msg := Message{From: "s@elsewhere.net", Mailboxes: []string{"a@example.com"}, Received: time.Now()}
		if len(external) > 0 {
			msg.External = external
			msg.Notify = &DSNRequest{EnvID: "E1", Forwarded: []ForwardDSN{{Notify: "NEVER"}}}
		}
		if _, err := f.Deliver(ctx, msg, bytes.NewReader([]byte(text))); err != nil {
			t.Fatal(err)
		}
	}
	wantEncoding := func(want byte, what string) {
		t.Helper()
		if enc := lastDeliverEncoding(t, l); enc != want {
			t.Fatalf("%s was written with encoding %d, want %d", what, enc, want)
		}
	}
	deliver("Subject: one\r\n\r\nbinary\r\n")
	wantEncoding(fsm.EncodingBinary, "a new cluster's delivery")
	deliver("Subject: dsn\r\n\r\nforwarded\r\n", "x@elsewhere.invalid")
	wantEncoding(fsm.EncodingJSON3, "a new cluster's delivery with DSN parameters")
	// Below encoding 3, the parameters stay out and the binary command
	// serves: an older release could not apply them alike.
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingBinary}})
	deliver("Subject: dsn\r\n\r\nforwarded\r\n", "y@elsewhere.invalid")
	wantEncoding(fsm.EncodingBinary, "with the setting at 2, a delivery with DSN parameters")
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON}})
	deliver("Subject: two\r\n\r\njson\r\n")
	wantEncoding(fsm.EncodingJSON, "with the setting at JSON, a delivery")
	for id, n := range c.nodes {
		if err := n.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
		if msgs, err := n.State().Messages("a@example.com", "INBOX", 0, 0); err != nil || len(msgs) != 4 {
			t.Fatalf("%s holds %d messages (%v), want 4", id, len(msgs), err)
		}
	}
}

// startAtEncoding3 starts a cluster as the release before encoding 4
// did.
func startAtEncoding3(cfg *Config) {
	bs := *cfg.BootstrapSettings
	bs.CommandEncoding = fsm.EncodingJSON3
	cfg.BootstrapSettings = &bs
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

// The leader refuses a forwarded entry in a newer encoding than its
// setting allows (a follower may have encoded it just before the setting
// was lowered), and takes it under a setting that allows it.
func TestLeaderRefusesANewerEncoding(t *testing.T) {
	c := deliveryClusterWith(t, startAtEncoding3)
	l, f := c.leader(5*time.Second), c.follower()
	cmd := &fsm.Deliver{ID: "json3-entry", Hash: fmt.Sprintf("%x", sha256.Sum256([]byte("json3"))), Size: 5, Replicas: []string{l.ID(), f.ID()}, Mailboxes: []string{"a@example.com"},
		Queue: &fsm.QueuePart{From: "s@elsewhere.net", Recipients: []string{"x@elsewhere.invalid"}, DSN: &fsm.QueueDSN{EnvID: "E"}}}
	data, err := fsm.EncodeAs(cmd, fsm.EncodingJSON3)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, 10*time.Second)
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingBinary}})
	if _, _, err := f.forwardApply(ctx, l.ClusterAddr(), data); !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("an entry in encoding 3 under setting 2: %v, want refused", err)
	}
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingJSON3}})
	if _, _, err := f.forwardApply(ctx, l.ClusterAddr(), data); err != nil {
		t.Fatalf("an entry in encoding 3 under setting 3: %v", err)
	}
}

// A leader whose raft log ends in a barrier (as it does after a read in a
// new term, or raft's own no-op) has a commit index its state never
// reaches: raft hands neither to the FSM. Judging a forwarded entry in a
// newer encoding must still answer at once, not wait for the next
// command to be committed (or the forwarder's deadline).
func TestLeaderRefusesANewerEncodingAfterABarrier(t *testing.T) {
	c := deliveryClusterWith(t, func(cfg *Config) {
		startAtEncoding3(cfg)
		cfg.Queue.Interval = time.Hour // no lease entries to end the log meanwhile
	})
	l, f := c.leader(5*time.Second), c.follower()
	cmd := &fsm.Deliver{ID: "json3-after-barrier", Hash: fmt.Sprintf("%x", sha256.Sum256([]byte("json3"))), Size: 5, Replicas: []string{l.ID(), f.ID()}, Mailboxes: []string{"a@example.com"},
		Queue: &fsm.QueuePart{From: "s@elsewhere.net", Recipients: []string{"x@elsewhere.invalid"}, DSN: &fsm.QueueDSN{EnvID: "E"}}}
	data, err := fsm.EncodeAs(cmd, fsm.EncodingJSON3)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingBinary}})
	if err := l.raft.Barrier(5 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if got, applied := l.raft.CommitIndex(), l.state.Applied(); got <= applied {
		t.Fatalf("commit index %d, state applied %d: the log does not end in a barrier", got, applied)
	}
	start := time.Now()
	ctx := ctxT(t, 8*time.Second)
	if _, _, err := f.forwardApply(ctx, l.ClusterAddr(), data); !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("an entry in encoding 3 under setting 2, after a barrier: %v (after %v), want refused", err, time.Since(start))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the refusal took %v", took)
	}
}

// An entry sent to a node that is not the leader (the sender's view of
// the leader is stale: a follower, or a wiped node restarted at the old
// leader's address) is answered "not leader", which the sender retries
// elsewhere, and never judged there: a refusal would be definite, and
// end a delivery's retries with 451 although an earlier try, cut off,
// may have committed it.
func TestFollowerAnswersNotLeaderBeforeJudgingAnEntry(t *testing.T) {
	c := deliveryClusterWith(t, startAtEncoding3)
	l := c.leader(5 * time.Second)
	fs := c.followers(l)
	cmd := &fsm.Deliver{ID: "json3-to-a-follower", Hash: fmt.Sprintf("%x", sha256.Sum256([]byte("json3"))), Size: 5, Replicas: []string{fs[0].ID(), fs[1].ID()}, Mailboxes: []string{"a@example.com"},
		Queue: &fsm.QueuePart{From: "s@elsewhere.net", Recipients: []string{"x@elsewhere.invalid"}, DSN: &fsm.QueueDSN{EnvID: "E"}}}
	data, err := fsm.EncodeAs(cmd, fsm.EncodingJSON3)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, l, &fsm.SettingsSet{Settings: fsm.Settings{Replicas: 2, WriteQuorum: 2, CommandEncoding: fsm.EncodingBinary}})
	c.readEverywhere("a@example.com")
	if _, _, err := fs[0].forwardApply(ctxT(t, 10*time.Second), fs[1].ClusterAddr(), data); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("an entry in encoding 3 under setting 2, sent to a follower: %v, want ErrNotLeader", err)
	}
}
