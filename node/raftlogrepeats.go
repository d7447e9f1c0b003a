package node

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// raft logs a refused snapshot (ErrSnapshotNoSpace) itself, at ERROR, at
// every try: the follower's "failed to copy snapshot" and "failed to
// install snapshot", the leader's "failed to open snapshot", "failed to
// install snapshot" (the follower's refusal, come back as text) and
// "failed to send snapshot to". A try comes every replication backoff
// (up to ~10 s) for as long as the disk stays at its reserve, while the
// node's own warning goes out once a minute (snapshotSpace.refuse).
// refusalRepeats holds raft's repeats to the same pace: a line that
// names the refusal goes out once per snapshotWarnEvery for each message
// and set of other values (peer, snapshot ID), saying how many were left
// out since ("suppressed"); the others go out at Debug. Lines that do not
// name the refusal pass as they are, so no other error is hidden.
type refusalRepeats struct {
	every time.Duration
	now   func() time.Time // time.Now if nil; tests move it on

	mu   sync.Mutex
	seen map[string]*repeatSeen
}

type repeatSeen struct {
	at         time.Time // the last line let out
	suppressed int64     // lines left out since
}

func newRefusalRepeats() *refusalRepeats {
	return &refusalRepeats{every: snapshotWarnEvery, seen: map[string]*repeatSeen{}}
}

// admit reports whether a line keyed key goes out, and if it does, how
// many like it were left out before it.
func (r *refusalRepeats) admit(key string) (bool, int64) {
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.seen[key]; s != nil && now.Sub(s.at) < r.every {
		s.suppressed++
		return false, 0
	}
	var left int64
	if s := r.seen[key]; s != nil {
		left = s.suppressed
	}
	r.forget(now)
	r.seen[key] = &repeatSeen{at: now}
	return true, left
}

// forget drops the keys not let out for a while, once there are many:
// one per peer and snapshot, so few at a time.
func (r *refusalRepeats) forget(now time.Time) {
	if len(r.seen) < 64 {
		return
	}
	for k, s := range r.seen {
		if now.Sub(s.at) >= 10*r.every {
			delete(r.seen, k)
		}
	}
}

// refusalKey is the key of a raft line that names a refused snapshot
// (a value that is ErrSnapshotNoSpace or quotes it), from its logger's
// name, message and other values; ok is false for any other line.
func refusalKey(name, msg string, args []any) (key string, ok bool) {
	parts := []string{name, msg}
	for _, a := range args {
		if namesNoSpace(a) {
			ok = true
			continue
		}
		parts = append(parts, fmt.Sprint(plainValue(a)))
	}
	return strings.Join(parts, "\x00"), ok
}

// namesNoSpace reports a value that is, or quotes, ErrSnapshotNoSpace.
// raft formats the errors it passes on with %v, and the leader gets a
// follower's as text, so the message is looked for as well.
func namesNoSpace(a any) bool {
	switch v := a.(type) {
	case error:
		return errors.Is(v, ErrSnapshotNoSpace) || strings.Contains(v.Error(), ErrSnapshotNoSpace.Error())
	case string:
		return strings.Contains(v, ErrSnapshotNoSpace.Error())
	}
	return false
}
