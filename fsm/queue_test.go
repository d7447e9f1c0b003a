package fsm

import (
	"errors"
	"testing"
)

func queueFixture(t *testing.T) (*applier, string, string) {
	a := deliveryFixture(t)
	h := bodyHash("forwarded")
	r := a.apply(&Deliver{ID: "d1", Hash: h, Size: 9, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"},
		InternalDate: 1000, Queue: &QueuePart{From: "s@far.org", Recipients: []string{"x@other.net", "y@other.net", "x@other.net"}, NextAttempt: 1000}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	res := r.Value.(DeliverResult)
	if res.Queued == "" || res.UIDs["a@example.com"] != 1 {
		t.Fatalf("deliver: %+v", res)
	}
	return a, h, res.Queued
}

func TestQueueEntryInSameCommandHoldsReference(t *testing.T) {
	a, h, id := queueFixture(t)
	b, _ := a.s.Body(h)
	if b.Refs != 2 {
		t.Fatalf("refs %d, want 2 (mailbox + queue)", b.Refs)
	}
	e, err := a.s.QueueGet(id)
	if err != nil || e.From != "s@far.org" || len(e.Recipients) != 2 || e.Created != 1000 || e.Size != 9 {
		t.Fatalf("entry %+v %v", e, err)
	}
	// Repeating the delivery ID returns the first result, no second entry.
	r := a.apply(&Deliver{ID: "d1", Hash: h, Size: 9, Replicas: []string{"n1", "n2"}, Mailboxes: []string{"a@example.com"},
		Queue: &QueuePart{Recipients: []string{"x@other.net"}}})
	if r.Value.(DeliverResult).Queued != id {
		t.Fatalf("repeat: %+v", r.Value)
	}
	if l, _ := a.s.QueueList("", 10); len(l) != 1 {
		t.Fatalf("%d entries", len(l))
	}
	// Queue only, no mailboxes.
	if r := a.apply(&Deliver{Hash: h, Size: 9, Replicas: []string{"n1", "n2"}, Queue: &QueuePart{Recipients: []string{"z@other.net"}}}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := a.apply(&Deliver{Hash: h, Size: 9, Replicas: []string{"n1", "n2"}, Queue: &QueuePart{}}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatalf("empty queue part: %v", r.Err)
	}
	// Removing releases the reference; the body goes to zero once the
	// mailbox copy is expunged too.
	a.must(&QueueRemove{ID: id})
	if b, _ := a.s.Body(h); b.Refs != 2 {
		t.Fatalf("refs after remove %d, want 2", b.Refs)
	}
	if r := a.apply(&QueueRemove{ID: id}); r.Err != nil || r.Value != false {
		t.Fatalf("second remove: %+v", r)
	}
	if _, err := a.s.QueueGet(id); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}

func TestQueueLeaseIsExclusiveAndLapses(t *testing.T) {
	a, _, id := queueFixture(t)
	lease := func(holder string, now int64) []QueueEntry {
		r := a.apply(&QueueLease{Holder: holder, Now: now, TTL: 100, Limit: 10})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Value.([]QueueEntry)
	}
	if got := lease("w1", 999); len(got) != 0 {
		t.Fatalf("leased before due: %+v", got)
	}
	if got := lease("w1", 1000); len(got) != 1 || got[0].ID != id || got[0].LeaseExpires != 1100 {
		t.Fatalf("lease: %+v", got)
	}
	if got := lease("w2", 1050); len(got) != 0 {
		t.Fatal("two holders")
	}
	if ids, _ := a.s.QueueDue(1050, 10); len(ids) != 0 {
		t.Fatalf("leased entry due: %v", ids)
	}
	// w1 died: the lease lapses and w2 takes over.
	if got := lease("w2", 1100); len(got) != 1 || got[0].LeaseHolder != "w2" {
		t.Fatalf("after lapse: %+v", got)
	}
	// A late report from w1 is still recorded, without touching w2's lease.
	e := a.apply(&QueueUpdate{ID: id, Holder: "w1", Outcomes: []RcptOutcome{{Address: "x@other.net", Outcome: OutcomeSent}}, NextAttempt: 1100}).Value.(QueueEntry)
	if e.LeaseHolder != "w2" || e.Recipients[0].State != RcptSent {
		t.Fatalf("late report: %+v", e)
	}
}

func TestQueueUpdateOutcomes(t *testing.T) {
	a, _, id := queueFixture(t)
	a.must(&QueueLease{Holder: "w", Now: 1000, TTL: 100, Limit: 1})
	e := a.apply(&QueueUpdate{ID: id, Holder: "w", Attempted: true, LastError: "451 try later", NextAttempt: 5000,
		Outcomes: []RcptOutcome{{Address: "x@other.net", Outcome: OutcomeTemp, Error: "451"}, {Address: "y@other.net", Outcome: OutcomePerm, Error: "550"}}}).Value.(QueueEntry)
	if e.Attempts != 1 || e.LeaseHolder != "" || e.NextAttempt != 5000 || e.Recipients[1].State != RcptFailed || e.Pending()[0] != "x@other.net" {
		t.Fatalf("%+v", e)
	}
	if ids, _ := a.s.QueueDue(4999, 10); len(ids) != 0 {
		t.Fatal("due before next attempt")
	}
	a.must(&QueueRetry{ID: id, Now: 2000})
	if ids, _ := a.s.QueueDue(2000, 10); len(ids) != 1 {
		t.Fatal("retry did not make it due")
	}
	// A failed recipient stays failed; sending the other finishes it.
	e = a.apply(&QueueUpdate{ID: id, Holder: "w", NextAttempt: 2000,
		Outcomes: []RcptOutcome{{Address: "x@other.net", Outcome: OutcomeSent}, {Address: "y@other.net", Outcome: OutcomeSent}}}).Value.(QueueEntry)
	if !e.Done() || e.Recipients[1].State != RcptFailed {
		t.Fatalf("%+v", e)
	}
	// A finished entry is leased once more, for its DSN and removal.
	if got := a.apply(&QueueLease{Holder: "w", Now: 9000, TTL: 100, Limit: 10}).Value.([]QueueEntry); len(got) != 1 || !got[0].Done() {
		t.Fatalf("finished entry: %+v", got)
	}
	if r := a.apply(&QueueUpdate{ID: id, Outcomes: []RcptOutcome{{Address: "x@other.net", Outcome: "maybe"}}}); !errors.Is(r.Err, ErrInvalid) {
		t.Fatal(r.Err)
	}
	st, _ := a.s.QueueStats()
	if st.Entries != 1 || st.Recipients != 0 || st.Oldest != 1000 {
		t.Fatalf("stats %+v", st)
	}
}

// Leases scan the due index from a low-water mark; an entry written due
// below the mark (created or rescheduled into the past) must still be
// found.
func TestQueueLeaseFindsEntriesBelowItsMark(t *testing.T) {
	a, h, id := queueFixture(t) // due at 1000
	lease := func(now int64) []QueueEntry {
		r := a.apply(&QueueLease{Holder: "w", Now: now, TTL: 100, Limit: 10})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		return r.Value.([]QueueEntry)
	}
	if got := lease(5000); len(got) != 1 || got[0].ID != id {
		t.Fatalf("first lease: %+v", got)
	}
	a.must(&QueueRemove{ID: id})
	if got := lease(6000); len(got) != 0 { // the mark is now above 6000
		t.Fatalf("empty queue leased %+v", got)
	}
	r := a.apply(&Deliver{ID: "d2", Hash: h, Size: 9, Replicas: []string{"n1", "n2"},
		Queue: &QueuePart{From: "s@far.org", Recipients: []string{"z@other.net"}, NextAttempt: 500}})
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	queued := r.Value.(DeliverResult).Queued
	if got := lease(6000); len(got) != 1 || got[0].ID != queued {
		t.Fatalf("entry due at 500 not leased at 6000: %+v", got)
	}
	// Rescheduled into the past by a retry: due again at once.
	a.must(&QueueUpdate{ID: queued, Holder: "w", NextAttempt: 9000})
	if got := lease(8000); len(got) != 0 {
		t.Fatalf("leased before its next attempt: %+v", got)
	}
	a.must(&QueueRetry{ID: queued, Now: 100})
	if got := lease(8000); len(got) != 1 {
		t.Fatalf("retried entry not leased: %+v", got)
	}
}
