package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"powermail/node"
)

// raftFlags set when raft compacts its log. A snapshot is a marker (the
// state is durable by itself), so snapshotting often costs little; what
// the settings trade is the log's size on disk against how soon a node
// that fell behind needs the whole state streamed to it.
type raftFlags struct {
	snapshotInterval  time.Duration
	snapshotThreshold uint64
	trailingLogs      uint64
	entryMessages     int
}

func (r *raftFlags) register(fl *pflag.FlagSet) {
	fl.DurationVar(&r.snapshotInterval, "raft-snapshot-interval", 2*time.Minute, "how often raft checks whether to snapshot and compact its log (1s to 24h)")
	fl.Uint64Var(&r.snapshotThreshold, "raft-snapshot-threshold", 16384, "log entries since the last snapshot that make the next check take one (at least 1)")
	fl.IntVar(&r.entryMessages, "raft-entry-messages", node.DefaultEntryMessages, "most messages one raft entry of a folder delete, COPY, MOVE, STORE, EXPUNGE or mailbox removal touches; larger ones go in several entries, so that deliveries do not wait behind one long apply (at least 1)")
	fl.Uint64Var(&r.trailingLogs, "raft-trailing-logs", 10240, "log entries kept after a snapshot, so that a follower that far behind catches up from the log rather than a streamed state (at least 1)")
}

func (r *raftFlags) validate() error {
	if r.snapshotInterval < time.Second || r.snapshotInterval > 24*time.Hour {
		return fmt.Errorf("--raft-snapshot-interval %v: must be between 1s and 24h", r.snapshotInterval)
	}
	if r.snapshotThreshold < 1 || r.trailingLogs < 1 {
		return fmt.Errorf("--raft-snapshot-threshold and --raft-trailing-logs must be at least 1")
	}
	if r.entryMessages < 1 {
		return fmt.Errorf("--raft-entry-messages %d: must be at least 1", r.entryMessages)
	}
	return nil
}

func (r *raftFlags) apply(cfg *node.Config) {
	cfg.Raft.SnapshotInterval = r.snapshotInterval
	cfg.Raft.SnapshotThreshold = r.snapshotThreshold
	cfg.Raft.TrailingLogs = r.trailingLogs
	cfg.EntryMessages = r.entryMessages
}
