package node

import (
	"sync"

	"github.com/hashicorp/raft"
)

// pipelineSlack is how many decoded replies a pipeline holds for raft
// beyond what the transport itself buffers.
const pipelineSlack = 64

// raftTransport is raft's network transport with pipelines that cannot
// wedge a replication goroutine.
//
// hashicorp/raft (1.7.3) stops reading a pipeline's replies as soon as
// one says "not yet" (a follower missing earlier entries) or shows a
// newer term, and only then tells its sender to stop. A send in that gap
// waits for the reply reader, which waits for raft to take the previous
// reply, so the sender never returns, never closes the pipeline, and
// the follower gets heartbeats but no more entries until the leader
// restarts; raft's Shutdown waits for that goroutine for ever. Each
// pipeline here moves replies into a buffer of its own as they arrive,
// so a send never waits on raft, and closeAll ends every live pipeline
// when the node stops.
type raftTransport struct {
	*raft.NetworkTransport
	heartbeats heartbeatGate // heartbeat.go
	mu         sync.Mutex
	live       map[*safePipeline]struct{}
	ended      bool
}

func newRaftTransport(t *raft.NetworkTransport) *raftTransport {
	return &raftTransport{NetworkTransport: t, live: map[*safePipeline]struct{}{}}
}

// AppendEntriesPipeline opens the transport's pipeline and wraps it.
func (t *raftTransport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	inner, err := t.NetworkTransport.AppendEntriesPipeline(id, target)
	if err != nil {
		return nil, err
	}
	p := &safePipeline{id: id, inner: inner, out: make(chan raft.AppendFuture, pipelineSlack), done: make(chan struct{}), owner: t}
	t.mu.Lock()
	if t.ended {
		t.mu.Unlock()
		inner.Close()
		return nil, raft.ErrTransportShutdown
	}
	t.live[p] = struct{}{}
	t.mu.Unlock()
	go p.forward()
	return p, nil
}

// closeAll ends every pipeline, now and from now on.
func (t *raftTransport) closeAll() {
	t.mu.Lock()
	t.ended = true
	ps := make([]*safePipeline, 0, len(t.live))
	for p := range t.live {
		ps = append(ps, p)
	}
	t.mu.Unlock()
	for _, p := range ps {
		p.Close()
	}
}

// safePipeline forwards the inner pipeline's replies to out, in order,
// each checked to come from the server id (raftpeer.go). out is never
// closed: raft reads it until it stops on its own.
type safePipeline struct {
	id    raft.ServerID
	inner raft.AppendPipeline
	out   chan raft.AppendFuture
	done  chan struct{}
	once  sync.Once
	owner *raftTransport
}

func (p *safePipeline) forward() {
	in := p.inner.Consumer()
	for {
		select {
		case f := <-in:
			checkPipelined(p.id, f)
			select {
			case p.out <- f:
			case <-p.done:
				return
			}
		case <-p.done:
			return
		}
	}
}

func (p *safePipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	return p.inner.AppendEntries(args, resp)
}

func (p *safePipeline) Consumer() <-chan raft.AppendFuture { return p.out }

// Close ends the inner pipeline (which fails a send waiting in it) and
// the forwarder.
func (p *safePipeline) Close() error {
	var err error
	p.once.Do(func() {
		close(p.done)
		err = p.inner.Close()
		p.owner.mu.Lock()
		delete(p.owner.live, p)
		p.owner.mu.Unlock()
	})
	return err
}
