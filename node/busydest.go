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
	mu       sync.Mutex
	waiters  int       // attempts waiting for one of its connections
	winStart time.Time // the current window of ended transactions
	winCount int
	rate     float64   // transactions a second over the last whole window
	next     time.Time // the due time of the last entry given back
}

// lineWindow is the span over which a host's pace is measured.
const lineWindow = 10 * time.Second

// ended counts a transaction that ended on the host, at now.
func (l *hostLine) ended(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.winStart.IsZero() {
		l.winStart = now
	}
	if d := now.Sub(l.winStart); d >= lineWindow {
		l.rate = float64(l.winCount) / d.Seconds()
		l.winStart, l.winCount = now, 0
	}
	l.winCount++
}

// enter counts the caller as a waiter until it leaves.
func (l *hostLine) enter() {
	l.mu.Lock()
	l.waiters++
	l.mu.Unlock()
}

// pace is the host's transactions a second: the last whole window's, or
// the current one's if faster, and never below floor (a host whose
// first transactions have not ended yet). Under l.mu.
func (l *hostLine) pace(now time.Time, floor float64) float64 {
	rate := max(l.rate, floor)
	if d := now.Sub(l.winStart); !l.winStart.IsZero() && d >= time.Second {
		rate = max(rate, float64(l.winCount)/d.Seconds())
	}
	return rate
}

func (l *hostLine) leave() {
	l.mu.Lock()
	l.waiters--
	l.mu.Unlock()
}

// giveBack schedules an entry given back at now: one transaction's time
// (at the host's pace) after the waiters ahead of it, or after the entry
// given back before it, whichever is later.
func (l *hostLine) giveBack(now time.Time, floor float64) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	step := time.Duration(float64(time.Second) / l.pace(now, floor))
	due := now.Add(time.Duration(l.waiters) * step)
	if l.next.After(due) {
		due = l.next
	}
	l.next = due.Add(step)
	return l.next
}
