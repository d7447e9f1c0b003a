package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"powermail/fsm"
	"powermail/storage"
)

const testGCIdle = 300 * time.Millisecond

func gcCluster(t *testing.T) (*testCluster, []*Node) {
	c := newTestClusterWith(t, 3, func(cfg *Config) {
		cfg.GCIdle = testGCIdle
		cfg.GCInterval = time.Hour // rounds run by hand
	})
	l := c.leader(5 * time.Second)
	mustApply(t, l, &fsm.DomainAdd{Name: "example.com"})
	mustApply(t, l, &fsm.MailboxAdd{Mailboxes: []fsm.NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}}})
	waitFor(t, 5*time.Second, "member records", func() bool {
		m, _ := l.State().Members()
		return len(m) == 3
	})
	return c, []*Node{c.nodes["n1"], c.nodes["n2"], c.nodes["n3"]}
}

func storeBodies(t *testing.T, ns []*Node) []int64 {
	var out []int64
	for _, n := range ns {
		st, err := n.bodies.Stats(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st.Bodies)
	}
	return out
}

func TestGCDeletesExpungedBodiesEverywhere(t *testing.T) {
	c, ns := gcCluster(t)
	ctx := ctxT(t, 30*time.Second)
	time.Sleep(testGCIdle) // the stores' start-up grace
	baseline := storeBodies(t, ns)
	var hashes []string
	for i := 0; i < 6; i++ {
		body := fmt.Sprintf("Subject: %d\r\n\r\n%s\r\n", i, strings.Repeat("x", 100*i))
		if _, err := ns[i%3].Deliver(ctx, Message{Mailboxes: []string{"a@example.com", "b@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, storage.HashBytes([]byte(body)).String())
	}
	// Read one body through the node without a replica: that cached copy
	// must go too.
	if rd, err := ns[2].OpenBody(ctx, hashes[0]); err == nil {
		rd.Close()
	}
	for _, box := range []string{"a@example.com", "b@example.com"} {
		if _, err := ns[1].Expunge(ctx, box, "INBOX", nil, false); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(testGCIdle + 50*time.Millisecond)
	bodies, freed, err := c.collectGarbage(ctx)
	if err != nil || bodies != len(hashes) || freed == 0 {
		t.Fatalf("collect: %d bodies, %d bytes, %v", bodies, freed, err)
	}
	if got := storeBodies(t, ns); fmt.Sprint(got) != fmt.Sprint(baseline) {
		t.Errorf("bodies per node %v after GC, baseline %v", got, baseline)
	}
	for _, n := range ns {
		n.Barrier(ctx)
		for _, h := range hashes {
			if _, err := n.State().Body(h); !errors.Is(err, fsm.ErrNotFound) {
				t.Errorf("%s still has the record of %s: %v", n.ID(), h, err)
			}
		}
	}
}

// TestGCNeverDeletesTheLastCopy races collection rounds against
// deliveries of the same content, and checks after every round that a
// referenced body has an intact copy on every listed replica.
func TestGCNeverDeletesTheLastCopy(t *testing.T) {
	c, ns := gcCluster(t)
	ctx := ctxT(t, 60*time.Second)
	body := "Subject: same\r\n\r\nthe same content again and again\r\n"
	h := storage.HashBytes([]byte(body))
	deliver := func(n *Node) {
		if _, err := n.Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
			t.Error(err)
		}
	}
	time.Sleep(testGCIdle)
	collected, judged := 0, 0
	for round := 0; round < 12; round++ {
		deliver(ns[round%3])
		if _, err := ns[0].Expunge(ctx, "a@example.com", "INBOX", nil, false); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testGCIdle + 20*time.Millisecond) // old copies become collectable
		l := c.leader(time.Second)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			bodies, _, err := l.CollectGarbage(ctx) // not c's helper: Fatal belongs to the test goroutine
			if err != nil {
				t.Error(err)
			}
			collected += bodies
		}()
		var took time.Duration
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round%4) * 3 * time.Millisecond)
			start := time.Now()
			deliver(ns[(round+1)%3])
			took = time.Since(start)
		}()
		wg.Wait()
		// The promise holds for a delivery that commits within the idle
		// window of its fresh copies (DefaultGCIdle is minutes; a
		// delivery gives up after about 35 s). Here the window is 300 ms,
		// which a delivery on a loaded machine can outlast: such a round
		// is outside the design and not judged.
		if took < testGCIdle/2 {
			judged++
			checkCopies(t, ns, h)
		} else {
			t.Logf("round %d: the racing delivery took %v, beyond this test's idle window; not judged", round, took)
		}
		if _, err := ns[0].Expunge(ctx, "a@example.com", "INBOX", nil, false); err != nil {
			t.Fatal(err)
		}
		// A round after the race finishes or stops the collection.
		time.Sleep(testGCIdle + 20*time.Millisecond)
		n, _, err := c.collectGarbage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		collected += n
	}
	if collected == 0 {
		t.Fatal("no round collected anything: the race was never run")
	}
	if judged == 0 {
		t.Fatal("every racing delivery outlasted the idle window: nothing was judged")
	}
	t.Logf("%d collections raced deliveries of the same content", collected)
}

// checkCopies asserts that if h is referenced, every replica the
// directory lists holds an intact copy.
func checkCopies(t *testing.T, ns []*Node, h storage.Hash) {
	t.Helper()
	ctx := ctxT(t, 10*time.Second)
	ns[0].Barrier(ctx)
	b, err := ns[0].State().Body(h.String())
	if errors.Is(err, fsm.ErrNotFound) || (err == nil && b.Refs == 0) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range b.Replicas {
		for _, n := range ns {
			if n.ID() == id {
				if err := n.bodies.Verify(ctx, h); err != nil {
					t.Fatalf("referenced body %s (refs %d) lost on listed replica %s: %v", h, b.Refs, id, err)
				}
			}
		}
	}
}

// TestGCThroughAFollower runs `storage gc` against a follower's admin
// API: the follower has the leader run the round and reports its result.
func TestGCThroughAFollower(t *testing.T) {
	c, ns := gcCluster(t)
	ctx := ctxT(t, 30*time.Second)
	body := "Subject: gc\r\n\r\n" + strings.Repeat("y", 500) + "\r\n"
	if _, err := ns[0].Deliver(ctx, Message{Mailboxes: []string{"a@example.com"}, Received: time.Now()}, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	if _, err := ns[1].Expunge(ctx, "a@example.com", "INBOX", nil, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(testGCIdle + 50*time.Millisecond)
	f := c.follower()
	code, reply := adminDo(t, f, "POST", "/v1/storage/gc", string(testSecret), "")
	if code != 200 || !strings.Contains(reply, `"bodies":1`) {
		t.Fatalf("gc through follower %s: %d %s", f.ID(), code, reply)
	}
	h := storage.HashBytes([]byte(body)).String()
	for _, n := range ns {
		n.Barrier(ctx)
		if _, err := n.State().Body(h); !errors.Is(err, fsm.ErrNotFound) {
			t.Errorf("%s still has the record of %s: %v", n.ID(), h, err)
		}
	}
}
