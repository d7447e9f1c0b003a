package node

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A node's close waits for a heartbeat under way (which may save a new
// term to the raft log store) before it closes the stores, and refuses
// heartbeats after it instead of handing them to raft.
func TestHeartbeatGateWaitsThenRefuses(t *testing.T) {
	var g heartbeatGate
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	hb := g.wrap(func(rpc raft.RPC) {
		calls++
		close(entered)
		<-release
		rpc.Respond(&raft.AppendEntriesResponse{}, nil)
	})
	firstResp := make(chan raft.RPCResponse, 1)
	go hb(raft.RPC{RespChan: firstResp})
	<-entered
	closed := make(chan struct{})
	go func() {
		g.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("close returned while a heartbeat was still being handled")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("close did not return after the heartbeat ended")
	}
	if r := <-firstResp; r.Error != nil {
		t.Fatalf("the heartbeat under way was answered with %v", r.Error)
	}
	lateResp := make(chan raft.RPCResponse, 1)
	hb(raft.RPC{RespChan: lateResp})
	if r := <-lateResp; !errors.Is(r.Error, raft.ErrTransportShutdown) || calls != 1 {
		t.Fatalf("heartbeat after close: %v, raft called %d times; want ErrTransportShutdown and 1", r.Error, calls)
	}
}
