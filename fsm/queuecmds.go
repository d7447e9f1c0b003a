package fsm

import (
	"encoding/binary"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// QueueLease claims up to Limit entries due at Now for Holder, for TTL
// ms. An entry already leased to Holder is renewed. The value is the
// claimed entries ([]QueueEntry).
type QueueLease struct {
	Holder string `json:"holder"`
	Now    int64  `json:"now"`    // unix ms at the proposer
	TTL    int64  `json:"ttl_ms"` // lease length
	Limit  int    `json:"limit"`
	// IDs, when set, claims only these entries (if due); else the
	// earliest due ones.
	IDs []string `json:"ids,omitempty"`
}

func (*QueueLease) Type() CmdType { return CmdQueueLease }

// MaxQueueLease bounds one lease batch.
const MaxQueueLease = 1000

func (c *QueueLease) apply(tx *txn) (any, error) {
	if c.Holder == "" || c.TTL <= 0 || c.Limit <= 0 || c.Limit > MaxQueueLease {
		return nil, errorf(ErrInvalid, "queue lease needs a holder, a lease and a limit up to %d", MaxQueueLease)
	}
	ids := c.IDs
	if len(ids) == 0 {
		var err error
		if ids, err = tx.dueIDs(c.Now, c.Limit); err != nil {
			return nil, err
		}
	}
	out := []QueueEntry{}
	for _, id := range ids {
		e, err := loadEntry(tx, id)
		if Code(err) == "not_found" {
			continue
		} else if err != nil {
			return nil, err
		}
		// A finished entry is still leased: its worker sends the DSN and
		// removes it.
		if e.NextAttempt > c.Now || (e.LeaseExpires > c.Now && e.LeaseHolder != c.Holder) {
			continue
		}
		old := e
		e.LeaseHolder, e.LeaseExpires = c.Holder, c.Now+c.TTL
		if err := putEntry(tx, &old, e); err != nil {
			return nil, err
		}
		out = append(out, e)
		if len(out) == c.Limit {
			break
		}
	}
	return out, nil
}

// dueIDs lists up to limit entries whose due time is at or before now.
func dueIDs(r pebble.Reader, now int64, limit int) ([]string, error) {
	ids, _, err := scanDue(r, 0, now, limit)
	return ids, err
}

// dueIDs is dueIDs for a command, starting at the low-water mark. Entries
// move along the due index as they are leased and rescheduled and leave
// it when removed, so its start fills with point tombstones until a
// compaction drops them; a scan from the start walked all of them on
// every lease. The mark is a time with no due key below it: a scan
// raises it to the first key it meets, putEntry lowers it for a key it
// writes below. It only skips absent keys, so every replica gets the same
// answer whatever its mark (Open and Restore start it at 0).
func (tx *txn) dueIDs(now int64, limit int) ([]string, error) {
	if tx.dueLow == nil {
		return dueIDs(tx.b, now, limit)
	}
	ids, first, err := scanDue(tx.b, tx.dueLow.Load(), now, limit)
	if err == nil {
		tx.dueLow.Store(first)
	}
	return ids, err
}

// scanDue lists up to limit entries due in [from, now], and the due time
// of the first key at or after from (now+1 if none is due by now).
func scanDue(r pebble.Reader, from, now int64, limit int) (ids []string, first int64, err error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: queueDueBound(from), UpperBound: queueDueBound(now + 1)})
	if err != nil {
		return nil, 0, err
	}
	first = now + 1
	for ok := it.First(); ok && len(ids) < limit; ok = it.Next() {
		k := it.Key()
		if len(ids) == 0 {
			first = int64(binary.BigEndian.Uint64(k[len(queueDuePrefix):]))
		}
		ids = append(ids, string(k[len(queueDuePrefix)+9:]))
	}
	return ids, first, it.Close()
}

// Outcome of one recipient in an attempt.
const (
	OutcomeSent = "sent"
	OutcomeTemp = "temp"
	OutcomePerm = "perm"
)

// RcptOutcome is what one delivery attempt did for one recipient.
type RcptOutcome struct {
	Address string `json:"address"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

// QueueUpdate records the outcome of an attempt on entry ID and releases
// Holder's lease. Outcomes are facts (a remote server said so) and are
// recorded whoever reports them; a sent or failed recipient stays so.
// NextAttempt schedules the next try of the recipients still pending;
// from command encoding 12 a zero NextAttempt leaves the schedule as it
// is (keepsSchedule).
type QueueUpdate struct {
	ID            string        `json:"id"`
	Holder        string        `json:"holder"`
	Outcomes      []RcptOutcome `json:"outcomes,omitempty"`
	NextAttempt   int64         `json:"next_attempt"`
	Attempted     bool          `json:"attempted,omitempty"` // count an attempt
	LastError     string        `json:"last_error,omitempty"`
	DelayNotified bool          `json:"delay_notified,omitempty"`
	// FailNotified marks failed recipients whose failure notice went out
	// before the entry was done, so the final notice leaves them out.
	// Written as EncodingJSON3, which a release before it does not apply.
	FailNotified []string `json:"fail_notified,omitempty"`
}

func (*QueueUpdate) Type() CmdType { return CmdQueueUpdate }

func (c *QueueUpdate) needsJSON3() bool { return len(c.FailNotified) > 0 }

func (c *QueueUpdate) apply(tx *txn) (any, error) {
	e, err := loadEntry(tx, c.ID)
	if err != nil {
		return nil, err
	}
	for _, o := range c.Outcomes {
		if o.Outcome != OutcomeSent && o.Outcome != OutcomeTemp && o.Outcome != OutcomePerm {
			return nil, errorf(ErrInvalid, "outcome %q", o.Outcome)
		}
	}
	old := e
	for _, o := range c.Outcomes {
		for i := range e.Recipients {
			r := &e.Recipients[i]
			if r.Address != o.Address || r.State != RcptPending {
				continue
			}
			r.Error = o.Error
			switch o.Outcome {
			case OutcomeSent:
				r.State = RcptSent
			case OutcomePerm:
				r.State = RcptFailed
			}
		}
	}
	for i := range e.Recipients {
		if r := &e.Recipients[i]; r.State == RcptFailed && slices.Contains(c.FailNotified, r.Address) {
			r.Notified = true
		}
	}
	if c.Attempted {
		e.Attempts++
	}
	if c.LastError != "" {
		e.LastError = c.LastError
	}
	e.DelayNotified = e.DelayNotified || c.DelayNotified
	keep, err := c.keepsSchedule(tx)
	if err != nil {
		return nil, err
	}
	if !keep {
		e.NextAttempt = c.NextAttempt
	}
	if e.LeaseHolder == c.Holder {
		e.LeaseHolder, e.LeaseExpires = "", 0
	}
	return e, putEntry(tx, &old, e)
}

// keepsSchedule reports whether the update leaves the entry's
// NextAttempt as it is: from command encoding 12 (gates.go), when it
// names none (zero). A notice's update (DelayNotified, FailNotified) is
// built from the entry as its worker read it before sending the notice;
// writing that NextAttempt back undid an operator's retry committed in
// between. Below 12 the value is written as it is, zero included, as a
// release before 12 does. A worker's proposed time is never zero.
func (c *QueueUpdate) keepsSchedule(tx *txn) (bool, error) {
	if c.NextAttempt != 0 {
		return false, nil
	}
	return gated12(tx)
}

// QueueRetry makes entry ID due at Now (operator "queue retry").
type QueueRetry struct {
	ID  string `json:"id"`
	Now int64  `json:"now"`
}

func (*QueueRetry) Type() CmdType { return CmdQueueRetry }

func (c *QueueRetry) apply(tx *txn) (any, error) {
	e, err := loadEntry(tx, c.ID)
	if err != nil {
		return nil, err
	}
	old := e
	e.NextAttempt = c.Now
	return e, putEntry(tx, &old, e)
}

// QueueRemove deletes entry ID (finished, or dropped by an operator) and
// releases its body reference, so garbage collection can take the body.
// Removing an entry that is gone is a no-op (value false).
type QueueRemove struct {
	ID string `json:"id"`
}

func (*QueueRemove) Type() CmdType { return CmdQueueRemove }

func (c *QueueRemove) apply(tx *txn) (any, error) {
	e, err := loadEntry(tx, c.ID)
	if Code(err) == "not_found" {
		return false, nil
	} else if err != nil {
		return nil, err
	}
	if err := addBodyRefs(tx, map[string]int64{e.Hash: 1}, -1); err != nil {
		return nil, err
	}
	if err := tx.del(queueDueKey(e.due(), e.ID)); err != nil {
		return nil, err
	}
	return true, tx.del(queueKey(e.ID))
}
