package node

import (
	"sync"
	"time"

	"powermail/fsm"
)

// An operator's `queue retry` (fsm.QueueRetry) makes an entry due at
// once, and its attempt dials the entry's hosts even when a failed dial
// marked them down (hostdown.go): the operator may have just fixed the
// destination, and should not wait out HostDownTime, nor see the retry
// fail at once and count an attempt.
//
// The leader's worker tells such an attempt from a scheduled one by what
// raft applies, not by anything replicated: every node notes the retries
// it applies (raftFSM), so the node that leads when the entry is leased
// knows, wherever the operator's request came in and whatever leader
// committed it. A worker takes the note when it works the entry, and
// honours it only if the entry's NextAttempt is still the one the retry
// set: an update since (an attempt in flight when the retry committed
// records its own schedule) undid the retry, and the note with it.

// operatorRetries holds, per entry, the NextAttempt an operator's retry
// set. The note stays until the entry is worked, however long every
// worker is busy first: the NextAttempt check alone tells whether the
// retry still stands, so a note's age says nothing about that. A note
// older than keep (the queue's Lifetime, after which the entry has
// failed) is dropped only to bound the memory of notes whose entries
// went away unworked (dropped, or noted on a follower that never
// leads); so are the notes of a log replayed at start, if that old.
type operatorRetries struct {
	mu     sync.Mutex
	at     map[string]int64 // entry ID → NextAttempt the retry set, unix ms
	keep   time.Duration
	pruned time.Time
}

func newOperatorRetries(keep time.Duration) *operatorRetries {
	return &operatorRetries{at: map[string]int64{}, keep: keep}
}

// applied notes a retry raft applied at now; e is the entry as the
// retry left it.
func (r *operatorRetries) applied(e fsm.QueueEntry, now time.Time) {
	oldest := now.Add(-r.keep).UnixMilli()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.pruned) > r.keep/2 { // at most twice a keep: a batch of retries costs one pass
		r.pruned = now
		for id, at := range r.at {
			if at < oldest {
				delete(r.at, id)
			}
		}
	}
	if e.NextAttempt >= oldest {
		r.at[e.ID] = e.NextAttempt
	}
}

// take reports whether e, as leased, is due by an operator's retry, and
// forgets the note either way.
func (r *operatorRetries) take(e fsm.QueueEntry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.at[e.ID]
	delete(r.at, e.ID)
	return ok && at == e.NextAttempt
}
