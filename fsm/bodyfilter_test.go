package fsm

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// waitBodyFilter waits until s's body filter is built and no rebuild runs.
func waitBodyFilter(t *testing.T, s *State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.RLock()
		f := s.bodies
		s.mu.RUnlock()
		if f.cur.Load() != nil && !f.rebuilding.Load() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("body filter not built within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func filterFixture(t *testing.T, dir string) *applier {
	s, err := Open(dir, Options{bodyFilterMin: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &applier{t: t, s: s, index: s.Applied()}
}

// A body delivered again must find its record, whatever the filter is
// doing: a wrong "absent" would restart its reference count. A filter of
// capacity 8 is rebuilt many times while the deliveries apply; then the
// same holds after a reopen and after a restore, each with a new filter.
func TestBodyFilterKeepsReferences(t *testing.T) {
	const bodies = 300
	dir := t.TempDir()
	a := filterFixture(t, dir)
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}, {Address: "b@example.com"}}})
	a.must(&MemberSet{Member{ID: "n1", ClusterAddr: "n1:7000"}})
	a.must(&MemberSet{Member{ID: "n2", ClusterAddr: "n2:7000"}})
	deliverAll := func(a *applier, round int, to string) {
		t.Helper()
		for i := range bodies {
			a.must(&Deliver{ID: fmt.Sprintf("r%d-%d", round, i), Hash: bodyHash(fmt.Sprint(i)), Size: 1,
				Replicas: []string{"n1", "n2"}, Mailboxes: []string{to}})
		}
	}
	checkRefs := func(s *State, want int64, when string) {
		t.Helper()
		for i := range bodies {
			b, err := s.Body(bodyHash(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			if b.Refs != want {
				t.Fatalf("%s: body %d has %d references, want %d", when, i, b.Refs, want)
			}
		}
	}
	deliverAll(a, 1, "a@example.com")
	deliverAll(a, 2, "b@example.com")
	checkRefs(a.s, 2, "delivered twice")
	waitBodyFilter(t, a.s)
	if c := a.s.bodies.cur.Load().Capacity(); c < bodies {
		t.Fatalf("filter capacity %d for %d bodies: never rebuilt", c, bodies)
	}
	raw, _ := hex.DecodeString(bodyHash("never delivered"))
	if a.s.bodies.mayHave(raw) {
		t.Log("an unknown body passed the filter (a false positive, allowed)")
	}
	snap := dump(t, a.s)
	a.s.Close()

	r := filterFixture(t, dir) // reopen
	waitBodyFilter(t, r.s)
	deliverAll(r, 3, "a@example.com")
	checkRefs(r.s, 3, "after reopen")

	fresh := filterFixture(t, t.TempDir())
	if err := fresh.s.Restore(bytes.NewReader(snap)); err != nil {
		t.Fatal(err)
	}
	fresh.index = fresh.s.Applied()
	deliverAll(fresh, 4, "b@example.com") // maybe before the new filter is built
	checkRefs(fresh.s, 3, "after restore")
}

// Records written after a rebuild's scan and before its install are in
// the new filter only because their writers added them to it.
func TestBodyFilterCoversWritesDuringRebuild(t *testing.T) {
	scanned, release := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	s, err := Open(t.TempDir(), Options{bodyFilterMin: 8, bodyScanned: func() {
		if armed.CompareAndSwap(true, false) {
			scanned <- struct{}{}
			<-release
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a := &applier{t: t, s: s}
	a.must(&DomainAdd{Name: "example.com"})
	a.must(&MailboxAdd{Mailboxes: []NewMailbox{{Address: "a@example.com"}}})
	a.must(&MemberSet{Member{ID: "n1", ClusterAddr: "n1:7000"}})
	a.must(&MemberSet{Member{ID: "n2", ClusterAddr: "n2:7000"}})
	waitBodyFilter(t, s)
	armed.Store(true)
	deliver := func(round, from, to int) {
		for i := from; i < to; i++ {
			a.must(&Deliver{ID: fmt.Sprintf("r%d-%d", round, i), Hash: bodyHash(fmt.Sprint(i)), Size: 1,
				Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"}})
		}
	}
	deliver(1, 0, 9) // the ninth fills the filter: a rebuild starts
	<-scanned
	deliver(1, 9, 60) // written between the scan and the install
	close(release)
	waitBodyFilter(t, s)
	deliver(2, 0, 60)
	for i := range 60 {
		b, err := s.Body(bodyHash(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if b.Refs != 2 {
			t.Fatalf("body %d has %d references, want 2", i, b.Refs)
		}
	}
}
