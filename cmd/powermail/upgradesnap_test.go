package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// In a rolling upgrade a node that falls behind past the leader's log
// compaction catches up from a snapshot the leader streams (node
// snapstore.go, fsm snapshot.go), and the two may run different
// releases: a node restarted onto the new release while an old one
// leads, or an old follower restarted while a new one leads. The nodes
// of this subtest snapshot often and keep a short log, so that a
// follower stopped for a few seconds of mail must take a snapshot.
var upgradeSnapshotFlags = []string{
	"--raft-snapshot-interval", "1s",
	"--raft-snapshot-threshold", "16",
	"--raft-trailing-logs", "8",
}

// snapshotLead is how far past a stopped follower's applied index the
// leader's newest snapshot must be before the follower starts again:
// more than the trailing logs the leader keeps, with room for the
// entries the follower took after its index was read.
const snapshotLead = 60

// installedText is what both releases log (node/raftfsm.go Restore)
// when a snapshot the leader sent is installed; the restart at a
// node's start logs otherwise.
const installedText = "installed a snapshot from the leader"

// snapshotsAcrossReleases: at encoding 9, a follower restarted onto the
// new release installs a snapshot streamed by an old leader; then, with
// two nodes new, the last old node, stopped while a new node leads,
// comes back on the old release and installs the new leader's snapshot.
// Each time the states are equal, and at the end every message answered
// 250 is readable through every node.
func snapshotsAcrossReleases(t *testing.T, oldBin string) {
	ps := startOldCluster(t, oldBin, upgradeSnapshotFlags...)
	setUpSenderBoxes(t, ps)
	snd := startSender(t, ps)
	defer snd.stop()
	order := upgradeOrder(t, ps)

	// A new follower, an old leader.
	first := order[0]
	behindCompaction(t, ps, first, snd, nil)
	startOn(t, first, "", "--raft-entry-messages", upgradeEntryMessages)
	waitLogText(t, first, installedText, 60*time.Second)
	t.Logf("%s (new) installed the snapshot of %s (old): %s", first.id, leaderOf(t, ps).id, logLine(first.log.String(), installedText))
	snd.waitAcked(t, 20)
	checkStateEqual(t, first.admin, "after a new node installed an old leader's snapshot")

	// An old follower, a new leader. The last old node is stopped
	// (handing leadership to a new node if it leads) and started again
	// on the old release once the new leader has compacted past it.
	restartOn(t, order[1], "", "--raft-entry-messages", upgradeEntryMessages)
	snd.waitAcked(t, 20)
	old := order[2]
	behindCompaction(t, ps, old, snd, func(l *proc) {
		// Written by the new release at 9 while old is down, so that
		// old learns of it only from the snapshot: a mailbox larger
		// than --raft-entry-messages removed in pieces.
		mustCLI(t, "mailbox", "rm", "big9@example.com", "--addr", l.admin)
	})
	startOn(t, old, oldBin)
	waitLogText(t, old, installedText, 60*time.Second)
	if l := leaderOf(t, ps); l == old {
		t.Fatalf("%s, restarted on the old release, leads; want a node of the new release to lead", old.id)
	} else {
		t.Logf("%s (old) installed the snapshot of %s (new): %s", old.id, l.id, logLine(old.log.String(), installedText))
	}
	snd.waitAcked(t, 20)
	checkStateEqual(t, old.admin, "after an old node installed a new leader's snapshot")
	for _, p := range ps {
		if out := mustCLI(t, "mailbox", "ls", "--addr", p.admin); strings.Contains(out, "big9@") {
			t.Errorf("%s still lists big9@, removed while it was stopped:\n%s", p.id, out)
		}
		if s := settingsOf(t, p); s.CommandEncoding != 9 {
			t.Errorf("%s at encoding %d, want 9 throughout", p.id, s.CommandEncoding)
		}
	}
	finish(t, ps, snd)
}

// setUpSenderBoxes creates, through ps[1], the mailboxes the sender
// delivers to, its forward, and big9@ with more messages than the new
// nodes put in one entry of a removal.
func setUpSenderBoxes(t *testing.T, ps []*proc) {
	t.Helper()
	at := ps[1].admin
	mustCLI(t, "domain", "add", "example.com", "--addr", at)
	for _, u := range upgradeMailboxes {
		mustCLI(t, "mailbox", "add", u+"@example.com", "--password", "pw-"+u, "--addr", at)
	}
	mustCLI(t, "forward", "add", "team@example.com", "--to", "alice@example.com", "--to", "bob@example.com", "--addr", at)
	mustCLI(t, "mailbox", "add", "big9@example.com", "--password", "pw-big9", "--addr", at)
	for i := range 16 {
		body := fmt.Sprintf("Subject: filler %d\r\n\r\nfiller\r\n", i)
		if code, msg := send(t, ps[i%len(ps)].smtp, "filler@elsewhere.net", []string{"big9@example.com"}, body); code != 250 {
			t.Fatalf("filler to big9@: %d %s", code, msg)
		}
	}
}

// behindCompaction stops follower f, runs meanwhile (unless nil) with
// the leader, and waits, while the sender goes on
// through the other two, until the leader has taken a snapshot
// snapshotLead entries past f's applied index: the entries f lacks are
// gone from the leader's log, and f must install a snapshot to catch up.
func behindCompaction(t *testing.T, ps []*proc, f *proc, snd *sender, meanwhile func(leader *proc)) {
	t.Helper()
	at := appliedIndex(t, f)
	stopGently(t, f)
	l := leaderOtherThan(t, ps, f)
	if meanwhile != nil {
		meanwhile(l)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		idx := newestSnapshot(t, l)
		if idx >= at+snapshotLead {
			t.Logf("%s stopped at index %d; leader %s has a snapshot at %d", f.id, at, l.id, idx)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("leader %s has no snapshot past %d (newest %d) 60s after %s stopped at %d",
				l.id, at+snapshotLead, idx, f.id, at)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leaderOtherThan waits until a running node names a leader that is
// not the stopped f (f may have led and handed over) and returns it.
func leaderOtherThan(t *testing.T, ps []*proc, f *proc) *proc {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range ps {
			if p == f {
				continue
			}
			if st, err := status(t, p.admin); err == nil && st.Leader != "" && st.Leader != f.id {
				if l := byID(ps, st.Leader); l != nil {
					return l
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no node but the stopped %s names a leader after 30s", f.id)
	return nil
}

// appliedIndex is the index p says it has applied.
func appliedIndex(t *testing.T, p *proc) uint64 {
	t.Helper()
	var st struct {
		Nodes []struct {
			ID      string `json:"id"`
			Applied uint64 `json:"applied_index"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(statusCLI(t, "--json", "--addr", p.admin)), &st); err != nil {
		t.Fatal(err)
	}
	for _, n := range st.Nodes {
		if n.ID == p.id {
			return n.Applied
		}
	}
	t.Fatalf("%s not in its own status", p.id)
	return 0
}

// newestSnapshot is the index of p's newest raft snapshot, read from the
// names raft's file snapshot store gives them (term-index-millis, under
// DATA/raft/snapshots); 0 when there is none.
func newestSnapshot(t *testing.T, p *proc) uint64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(p.data, "raft", "snapshots"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var newest uint64
	for _, e := range ents {
		parts := strings.Split(e.Name(), "-")
		if !e.IsDir() || len(parts) != 3 || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if idx, err := strconv.ParseUint(parts[1], 10, 64); err == nil {
			newest = max(newest, idx)
		}
	}
	return newest
}

// logLine is the first line of log holding text.
func logLine(log, text string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, text) {
			return l
		}
	}
	return fmt.Sprintf("(no line with %q)", text)
}
