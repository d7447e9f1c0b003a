package node

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// pipelinePair starts a follower transport and a wrapped leader
// transport on loopback with the given timeout, and opens a pipeline
// from the leader to the follower.
func pipelinePair(t *testing.T, timeout time.Duration) (follower *raft.NetworkTransport, leader *raftTransport, p raft.AppendPipeline) {
	t.Helper()
	follower, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, timeout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follower.Close() })
	inner, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, timeout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	leader = newRaftTransport(inner)
	t.Cleanup(func() { leader.Close() })
	if p, err = leader.AppendEntriesPipeline("f", follower.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	return follower, leader, p
}

// A pipeline whose replies raft stopped reading (after a "not yet" reply)
// still takes sends, so the replication goroutine reaches its stop and
// closes the pipeline; raft's own pipeline wedges on the third send.
func TestPipelineSendsAfterRaftStopsReading(t *testing.T) {
	follower, _, p := pipelinePair(t, 5*time.Second)
	go func() {
		for rpc := range follower.Consumer() {
			rpc.Respond(&raft.AppendEntriesResponse{Term: 1, Success: false}, nil)
		}
	}()
	send := func() error {
		_, err := p.AppendEntries(&raft.AppendEntriesRequest{Term: 1}, &raft.AppendEntriesResponse{})
		return err
	}
	// raft reads one reply, sees it failed, and stops reading.
	if err := send(); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-p.Consumer():
		if f.Error() != nil || f.Response().Success {
			t.Fatalf("first reply: %v %+v", f.Error(), f.Response())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no first reply")
	}
	// Its sender races on for a few more sends before it sees the stop.
	done := make(chan error, 1)
	go func() {
		for range 10 {
			if err := send(); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a send after raft stopped reading replies never returned")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// closeAll fails a send waiting in a pipeline and refuses new ones.
func TestPipelinesClosedWithTheNode(t *testing.T) {
	follower, leader, p := pipelinePair(t, time.Minute) // the follower accepts, never answers
	done := make(chan error, 1)
	go func() {
		for {
			if _, err := p.AppendEntries(&raft.AppendEntriesRequest{Term: 1}, &raft.AppendEntriesResponse{}); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // the sender now waits on unanswered sends
	leader.closeAll()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closeAll left a send waiting")
	}
	if _, err := leader.AppendEntriesPipeline("f", follower.LocalAddr()); err == nil {
		t.Fatal("a pipeline opened after closeAll")
	}
}
