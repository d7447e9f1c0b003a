package fsm

import "testing"

// noticeRace runs, on a fresh queue entry at the cluster encoding enc,
// what a worker and an operator do at once: the worker leases the entry
// and records an attempt (one recipient refused for good, one deferred
// to 5000); the operator's retry makes it due at 2000; then the worker's
// failure and delay notice updates, built from the entry it read before
// the retry, commit with notice as their NextAttempt. It returns the
// entry as left.
func noticeRace(t *testing.T, enc int, notice int64) (*applier, QueueEntry) {
	t.Helper()
	a, _, id := queueFixture(t)
	a.raiseTo(enc)
	if r := a.apply(&QueueLease{Holder: "w1", Now: 1000, TTL: 100, Limit: 10}); r.Err != nil || len(r.Value.([]QueueEntry)) != 1 {
		t.Fatalf("lease: %+v", r)
	}
	a.must(&QueueUpdate{ID: id, Holder: "w1", Attempted: true, NextAttempt: 5000, Outcomes: []RcptOutcome{
		{Address: "x@other.net", Outcome: OutcomePerm, Error: "550 no"},
		{Address: "y@other.net", Outcome: OutcomeTemp, Error: "451 later"}}})
	a.must(&QueueRetry{ID: id, Now: 2000})
	for _, c := range []*QueueUpdate{
		{ID: id, FailNotified: []string{"x@other.net"}, NextAttempt: notice},
		{ID: id, DelayNotified: true, NextAttempt: notice},
	} {
		if r := a.applyAs(c, NewestEncoding); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	e, err := a.s.QueueGet(id)
	if err != nil {
		t.Fatal(err)
	}
	if !e.DelayNotified || !e.Recipients[0].Notified {
		t.Fatalf("the notice updates were not recorded: %+v", e)
	}
	return a, e
}

// From command encoding 12 a notice's update with a zero NextAttempt
// leaves the schedule alone: an operator's retry committed between the
// worker's read and the notice's update stands, and the entry is due at
// the retry's time (the due index agrees: a lease then takes it).
func TestQueueNoticeKeepsARetryFromEncoding12(t *testing.T) {
	a, e := noticeRace(t, EncodingJSON12, 0)
	if e.NextAttempt != 2000 {
		t.Fatalf("next attempt %d after the notices, want the retry's 2000", e.NextAttempt)
	}
	if r := a.apply(&QueueLease{Holder: "w2", Now: 2000, TTL: 100, Limit: 10}); r.Err != nil || len(r.Value.([]QueueEntry)) != 1 {
		t.Fatalf("lease at the retry's time: %+v", r)
	}
}

// Below command encoding 12 apply writes a notice's NextAttempt as it
// is, zero included, as releases before 12 do: the retry is undone by
// the worker's stale value.
func TestQueueNoticeGateBelowEncoding12(t *testing.T) {
	if _, e := noticeRace(t, EncodingJSON11, 5000); e.NextAttempt != 5000 {
		t.Fatalf("at 11 a notice carrying 5000 left %d, want 5000 as before", e.NextAttempt)
	}
	if _, e := noticeRace(t, EncodingJSON11, 0); e.NextAttempt != 0 {
		t.Fatalf("at 11 a notice carrying 0 left %d, want 0 as before", e.NextAttempt)
	}
}
