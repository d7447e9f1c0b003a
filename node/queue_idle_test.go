package node

import (
	"testing"
	"time"
)

// An idle leader writes no raft entry for the outbound queue: with
// nothing due, a round proposes no lease (each entry is a log write and
// an fsync on every node, once a queue interval, for ever). Mail queued
// afterwards is still sent (TestQueue* in queue_test.go).
func TestQueueIdleLeaderProposesNothing(t *testing.T) {
	s := newSink(t)
	c := queueCluster(t, s, nil)
	l := c.leader(5 * time.Second)
	time.Sleep(500 * time.Millisecond) // the cluster's own start settles
	before := l.raft.LastIndex()
	time.Sleep(1500 * time.Millisecond) // 30 queue intervals
	if grown := l.raft.LastIndex() - before; grown > 2 {
		t.Errorf("an idle leader's log grew by %d entries in 1.5 s (queue interval 50 ms)", grown)
	}
}
