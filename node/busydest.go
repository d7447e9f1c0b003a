package node

import (
	"fmt"
	"sync"
	"time"
)

// A destination host whose connections are all in use (busy) makes an
// attempt wait for one, up to QueueConfig.BusyWait; then the attempt
// gives its entry back (QUEUE.md, "Busy destinations"). The wait also
// paces the give-backs: an attempt given back at once would free its
// worker to lease the next entry for the same host, which would be
// given back too, and so on through a large backlog, a commit each. An
// entry given back is due again when the host should have room for it:
// after the attempts waiting ahead of it and the entries given back
// before it, at the pace its transactions have been ending. So a backlog
// for one slow host comes back spread out, not all at once after
// BusyWait to fill the workers again.

// busyError is ErrDestinationBusy with when the entry should come back.
type busyError struct {
	host  string
	until time.Time
}

func (e *busyError) Error() string {
	return fmt.Sprintf("%v: %s", ErrDestinationBusy, e.host)
}

func (e *busyError) Unwrap() error { return ErrDestinationBusy }

// hostLine is the demand on one destination host.
type hostLine struct {
	mu      sync.Mutex
	waiters int           // attempts waiting for one of its connections
	took    time.Duration // a transaction's time there, a moving average; 0: none ended yet
	next    time.Time     // the due time of the last entry given back
}

// ended counts a transaction that held one of the host's connections
// for took. The host's pace is measured by how long its transactions
// take, not by how many ended lately: an entry is given back only while
// every connection is in use, when the host takes conns transactions
// per took; a count over a span of time would also count the time the
// host was idle, and so call a host slow for having had little to do.
func (l *hostLine) ended(took time.Duration) {
	took = max(took, time.Millisecond) // a clock step must not make it free
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.took == 0 {
		l.took = took
		return
	}
	l.took += (took - l.took) / 4
}

// enter counts the caller as a waiter until it leaves.
func (l *hostLine) enter() {
	l.mu.Lock()
	l.waiters++
	l.mu.Unlock()
}

func (l *hostLine) leave() {
	l.mu.Lock()
	l.waiters--
	l.mu.Unlock()
}

// step is the time between two transactions ending on the host with all
// conns connections in use; a host none of whose transactions has ended
// yet is taken to do one a second per connection. Under l.mu.
func (l *hostLine) step(conns int) time.Duration {
	took := l.took
	if took == 0 {
		took = time.Second
	}
	return took / time.Duration(max(conns, 1))
}

// giveBack schedules an entry given back at now: one transaction's time
// (at the host's pace) after the waiters ahead of it, or after the entry
// given back before it, whichever is later, and never more than limit
// after now (a backlog of thousands for a slow host would otherwise be
// spread over days).
func (l *hostLine) giveBack(now time.Time, conns int, limit time.Duration) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	step := l.step(conns)
	due := now.Add(time.Duration(l.waiters) * step)
	if l.next.After(due) {
		due = l.next
	}
	l.next = due.Add(step)
	if last := now.Add(limit); l.next.After(last) {
		l.next = last
	}
	return l.next
}
