package node

import (
	"testing"
	"time"

	"powermail/fsm"
)

// retryBeforeNotices runs a worker's notices against an operator's
// retry on a cluster at command encoding enc. An entry for a recipient
// refused for good (x@elsewhere.net, 550) and one deferred
// (y@slow.net, 451) has its first attempt, after which it waits an hour
// (RetryMin). The test then plays a worker that read the entry before
// an operator's `queue retry` committed: it takes the entry, the retry
// commits, and finishEntry runs on the entry as read, past DelayNotify,
// so that it sends the early failure notice (the read still shows x
// unreported) and the delay notice, and commits their updates. It
// returns the entry's NextAttempt before the retry, the retry's time,
// and the NextAttempt left after the notices.
func retryBeforeNotices(t *testing.T, enc int) (before, retry, after int64) {
	refusing, slow := newSink(t), newSink(t)
	refusing.set("550")
	slow.set("451")
	c := queueClusterWith(t, refusing, func(cfg *Config) {
		cfg.BootstrapSettings = &BootstrapSettings{Replicas: 2, WriteQuorum: 2, CommandEncoding: enc}
		cfg.Queue.DestOverride["slow.net"] = slow.addr
		cfg.Queue.RetryMin, cfg.Queue.RetryMax = time.Hour, time.Hour
		cfg.Queue.DelayNotify = time.Hour
	})
	l := c.leader(time.Second)
	deliverOut(t, l, nil, "x@elsewhere.net", "y@slow.net")
	var e fsm.QueueEntry
	waitFor(t, 10*time.Second, "the first attempt and its early notice", func() bool {
		list, err := l.State().QueueList("", 10)
		if err != nil || len(list) != 1 {
			return false
		}
		e = list[0]
		return e.Attempts == 1 && e.LeaseHolder == "" && e.Recipients[0].Notified
	})
	e.Recipients[0].Notified = false // as the worker read it, before its early notice
	retry = time.Now().Add(30 * time.Minute).UnixMilli()
	mustApply(t, l, &fsm.QueueRetry{ID: e.ID, Now: retry})
	if err := l.finishEntry(ctxT(t, 10*time.Second), e, time.Now().Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := l.State().QueueGet(e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.DelayNotified {
		t.Fatalf("the delay notice was not recorded: %+v", got)
	}
	return e.NextAttempt, retry, got.NextAttempt
}

// From command encoding 12 the worker's notice updates leave the entry's
// schedule alone: an operator's retry committed after the worker read
// the entry stands.
func TestQueueRetryBeforeNoticesStands(t *testing.T) {
	before, retry, after := retryBeforeNotices(t, fsm.NewestEncoding)
	if after != retry {
		t.Fatalf("next attempt %d after the notices, want the retry's %d (the worker's read had %d)", after, retry, before)
	}
}

// Below command encoding 12 the notices write back the NextAttempt the
// worker read, as before: the retry is undone.
func TestQueueRetryBeforeNoticesGateBelow12(t *testing.T) {
	before, retry, after := retryBeforeNotices(t, fsm.EncodingJSON11)
	if after != before {
		t.Fatalf("next attempt %d after the notices at 11, want the worker's read %d (the retry had %d)", after, before, retry)
	}
}
