package node

import (
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"powermail/fsm"
)

// raftFSM adapts fsm.State to raft. It is deliberately thin: all decisions
// live in package fsm, which can replay a log without raft.
type raftFSM struct {
	state   *fsm.State
	metrics *metrics
	log     *slog.Logger
	// lastMail is set to the time of applying a delivery (repair_yield.go).
	lastMail *atomic.Int64
	// queueRetried is told of each operator's queue retry applied, with
	// the entry as it left it (queueretry.go).
	queueRetried func(fsm.QueueEntry)
	// configApplied is told of each configuration entry applied
	// (removed.go); the state sees no change for one.
	configApplied func(cf raft.Configuration)
	// configs is told the index of each configuration entry applied and,
	// after a restore, the configuration index of the snapshots in
	// snapshots, where raft stored the one it installs (configindex.go).
	configs   *configIndex
	snapshots raft.SnapshotStore
	// space holds the new state a restore builds to the free-space
	// reserve (snapspace.go); nil: not held.
	space *snapshotSpace
}

var _ raft.BatchingFSM = (*raftFSM)(nil)

func (f *raftFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies a run of committed entries in one Pebble batch.
// Non-command entries only advance the applied index.
func (f *raftFSM) ApplyBatch(logs []*raft.Log) []any {
	start := time.Now()
	entries := make([]fsm.Entry, len(logs))
	for i, l := range logs {
		entries[i].Index = l.Index
		if l.Type == raft.LogCommand {
			entries[i].Data = l.Data
			if len(l.Data) > 0 && fsm.CmdType(l.Data[0]) == fsm.CmdDeliver {
				f.lastMail.Store(start.UnixNano())
			}
		} else if l.Type == raft.LogConfiguration {
			f.noteConfiguration(l)
		}
	}
	results := f.state.ApplyBatch(entries)
	out := make([]any, len(results))
	for i := range results {
		out[i] = results[i]
		f.noteRetry(entries[i].Data, results[i])
	}
	f.metrics.applyBatch.Observe(time.Since(start).Seconds())
	f.metrics.applyBatchSize.Observe(float64(len(logs)))
	return out
}

// noteConfiguration tells configs and configApplied of an applied
// configuration entry.
func (f *raftFSM) noteConfiguration(l *raft.Log) {
	if f.configs != nil {
		f.configs.note(l.Index)
	}
	if f.configApplied != nil {
		f.configApplied(raft.DecodeConfiguration(l.Data))
	}
}

// noteRetry tells queueRetried of an applied QueueRetry. It runs before
// raft answers the batch's proposals, so a lease proposed after the
// retry finds it noted on the leader.
func (f *raftFSM) noteRetry(data []byte, res fsm.Result) {
	if f.queueRetried == nil || len(data) == 0 || fsm.CmdType(data[0]) != fsm.CmdQueueRetry || res.Err != nil {
		return
	}
	if e, ok := res.Value.(fsm.QueueEntry); ok {
		f.queueRetried(e)
	}
}

// Snapshot makes every applied entry durable before raft may truncate the
// log behind it, and notes the index that covers. raft calls it on the
// apply goroutine, so no entry is applied concurrently. The snapshot holds
// no copy of the state (snapstore.go).
func (f *raftFSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.state.Sync(); err != nil {
		return nil, fmt.Errorf("sync state before snapshot: %w", err)
	}
	return &fsmSnapshot{index: f.state.Applied()}, nil
}

func (f *raftFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.space.restore(f.state, rc); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.metrics.restores.Inc()
	if f.configs != nil && f.snapshots != nil {
		// The configurations before the snapshot will not be applied here.
		if err := f.configs.noteSnapshots(f.snapshots); err != nil {
			f.log.Warn("configuration index of the installed snapshot unknown", "err", err)
		}
	}
	f.log.Info("installed a snapshot from the leader", "applied", f.state.Applied())
	return nil
}

// fsmSnapshot is a marker for the durable state at index.
type fsmSnapshot struct {
	index uint64
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeMarker(sink, s.index); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
