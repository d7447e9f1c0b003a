package node

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// failingLog is a raft log store whose writes fail while fail is set: a
// raft log on a full or read-only filesystem. Reads still work.
type failingLog struct {
	raft.LogStore
	fail *atomic.Bool
}

var errLogWrite = errors.New("injected raft log write failure (disk full)")

func (l failingLog) StoreLog(log *raft.Log) error {
	if l.fail.Load() {
		return errLogWrite
	}
	return l.LogStore.StoreLog(log)
}

func (l failingLog) StoreLogs(logs []*raft.Log) error {
	if l.fail.Load() {
		return errLogWrite
	}
	return l.LogStore.StoreLogs(logs)
}

// TestLeaderThatCannotWriteItsLog: a leader whose raft log writes fail
// answers its proposals with the error and steps down (hashicorp/raft
// does), so it acknowledges nothing it did not get a majority to store.
// A delivery through it is proposed again to the next leader (its outcome
// was unknown) and is acknowledged only once committed there: every
// acknowledged message is then on every node, once.
func TestLeaderThatCannotWriteItsLog(t *testing.T) {
	fail := map[string]*atomic.Bool{}
	c := deliveryClusterWith(t, func(cfg *Config) {
		f := &atomic.Bool{}
		fail[cfg.ID] = f
		cfg.RaftLogStore = func(s raft.LogStore) raft.LogStore { return failingLog{LogStore: s, fail: f} }
	})
	ctx := ctxT(t, 60*time.Second)
	l := c.leader(5 * time.Second)
	fail[l.ID()].Store(true)
	acked := 0
	for i := range 3 {
		_, err := l.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(fmt.Sprintf("message %d", i)))
		if err == nil {
			acked++
		} else {
			t.Logf("delivery %d through the failing leader: %v", i, err)
		}
	}
	waitFor(t, 5*time.Second, l.ID()+" to stop leading with a raft log it cannot write", func() bool {
		return l.raft.State() != raft.Leader
	})
	fail[l.ID()].Store(false)
	nl := c.leader(10 * time.Second)
	if err := nl.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for id, n := range c.nodes {
		waitFor(t, 10*time.Second, id+" catches up", func() bool {
			return n.Barrier(ctx) == nil && n.state.Applied() >= nl.state.Applied()
		})
		msgs, err := n.State().Messages("a@example.com", "INBOX", 0, 0)
		if err != nil || len(msgs) < acked {
			t.Fatalf("%s holds %d messages (%v), %d were acknowledged", id, len(msgs), err, acked)
		}
		if len(msgs) > 3 {
			t.Fatalf("%s holds %d messages, 3 were sent", id, len(msgs))
		}
	}
	t.Logf("%d of 3 deliveries through the failing leader acknowledged (committed by the next leader)", acked)
}
