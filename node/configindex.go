package node

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// The configuration index. raft makes a configuration change conditional
// on the configuration it was decided on when given that configuration's
// log index (prevIndex): the leader refuses the change if its latest
// configuration is at another index. raft's GetConfiguration does not say
// the index (it reads a copy of the configuration kept without one, so
// its future's Index is always 0, and 0 makes a change unconditional), so
// the node keeps its own: the index of the newest configuration it knows
// committed. It learns it from
//
//   - each configuration entry the FSM applies (raft hands the FSM only
//     committed entries, configuration entries included);
//   - the newest raft snapshot's configuration index, at start (raft
//     resumes applying after the snapshot, so the entries it covers are
//     never applied again) and after the FSM installs a snapshot from the
//     leader (raft stores it before it asks the FSM to restore it).
//
// Every index learned is that of a committed configuration, and a leader
// holds every committed entry, so on the leader the index is never ahead
// of raft's latest configuration index; it can lag it while the leader
// has not yet applied a configuration entry it committed (just after an
// election), and then raft refuses a change made with it although the
// configuration did not change: see ErrConfigurationChanged. 0 means
// unknown (a node that has applied no configuration entry and holds no
// snapshot since it started with an empty log); a change made with 0 is
// unconditional, as raft treats it.

// ErrConfigurationChanged: the leader refused a configuration change
// because its latest configuration is not the one the change was decided
// on. The configuration changed meanwhile, or this node has not yet
// applied the newest one; either way the change is to be decided again.
var ErrConfigurationChanged = errors.New("the raft configuration changed since the change was decided")

// configIndex is the index of the newest committed configuration this
// node knows of.
type configIndex struct {
	v atomic.Uint64
}

// note raises the index to i if i is newer. Committed configurations
// only move forward, so the largest index seen is the newest.
func (c *configIndex) note(i uint64) {
	for {
		cur := c.v.Load()
		if i <= cur || c.v.CompareAndSwap(cur, i) {
			return
		}
	}
}

func (c *configIndex) load() uint64 { return c.v.Load() }

// noteSnapshots notes the configuration index of each snapshot in store.
func (c *configIndex) noteSnapshots(store raft.SnapshotStore) error {
	list, err := store.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	for _, m := range list {
		c.note(m.ConfigurationIndex)
	}
	return nil
}

// configChanged wraps raft's refusal of a change whose prevIndex is not
// the leader's latest configuration index in ErrConfigurationChanged;
// other errors are returned as they are. raft has no sentinel error for
// the refusal, only its message (nextConfiguration in raft's
// configuration.go), so the message is what is matched.
func configChanged(err error) error {
	if err != nil && strings.Contains(err.Error(), "configuration changed since") {
		return fmt.Errorf("%w: %v", ErrConfigurationChanged, err)
	}
	return err
}
