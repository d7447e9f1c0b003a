package fsm

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// The outbound queue: messages accepted for recipients outside the
// cluster (forwards to other providers, bounces), waiting to be sent.
//
//	"q\x00" id                       QueueEntry
//	"o\x00" due(8, BE) "\x00" id     empty: when the entry may next be worked
//
// Invariants:
//
//   - An entry holds one reference on its body from the Deliver (or
//     QueueAdd) that created it until QueueRemove, so garbage collection
//     never takes a body that is still to be sent.
//   - An entry is created in the same command as the local deliveries of
//     its message (Deliver.Queue), so the sender's 250 covers both.
//   - Exactly one worker holds an entry at a time: QueueLease grants a
//     lease whose expiry comes from the proposer's clock, and the entry is
//     not due again before the lease lapses. A dead worker's entries are
//     therefore picked up after one lease length, by whoever asks.
//   - The due index key is max(NextAttempt, LeaseExpires): one ordered
//     scan finds every entry that may be worked now.
//   - Apply never reads a clock: every time comes from the proposer.

// Recipient states.
const (
	RcptPending = "pending"
	RcptSent    = "sent"
	RcptFailed  = "failed" // permanently; a DSN reports it
)

// QueueRecipient is one external recipient of an entry.
type QueueRecipient struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Error   string `json:"error,omitempty"` // last reply or failure
	// Notify and ORCPT are the RFC 3461 parameters for this recipient
	// (QueueDSN); "" when the client gave none.
	Notify string `json:"notify,omitempty"`
	ORCPT  string `json:"orcpt,omitempty"`
	// Notified: its failure was reported to the sender while other
	// recipients were still pending (QueueUpdate.FailNotified).
	Notified bool `json:"notified,omitempty"`
}

// Wants reports whether the recipient's NOTIFY asks for a DSN of kind
// (SUCCESS, FAILURE or DELAY). Without NOTIFY, failures and delays are
// reported (RFC 3461 §4.1 leaves that default to the MTA).
func (r QueueRecipient) Wants(kind string) bool {
	if r.Notify == "" {
		return kind == NotifyFailure || kind == NotifyDelay
	}
	return slices.Contains(strings.Split(r.Notify, ","), kind)
}

// NOTIFY keywords (RFC 3461 §4.1).
const (
	NotifyNever   = "NEVER"
	NotifySuccess = "SUCCESS"
	NotifyFailure = "FAILURE"
	NotifyDelay   = "DELAY"
)

// QueueEntry is one message waiting to go out.
type QueueEntry struct {
	ID         string           `json:"id"`
	Hash       string           `json:"hash"`
	Size       int64            `json:"size"`
	Replicas   []string         `json:"replicas"`
	From       string           `json:"from"` // original envelope sender, "" for a bounce
	Recipients []QueueRecipient `json:"recipients"`
	Attempts   int              `json:"attempts"`
	// NextAttempt, Created and LeaseExpires are unix ms from proposers.
	NextAttempt   int64  `json:"next_attempt"`
	LastError     string `json:"last_error,omitempty"`
	Created       int64  `json:"created"`
	CreatedIndex  uint64 `json:"created_index"`
	LeaseHolder   string `json:"lease_holder,omitempty"`
	LeaseExpires  int64  `json:"lease_expires,omitempty"`
	DelayNotified bool   `json:"delay_notified,omitempty"` // RFC 3464 "delayed" DSN sent
	EnvID         string `json:"envid,omitempty"`          // RFC 3461 ENVID
	Ret           string `json:"ret,omitempty"`            // RFC 3461 RET: FULL or HDRS
	// Submitted: the message came from an authenticated submission
	// (QueuePart.Submitted).
	Submitted bool `json:"submitted,omitempty"`
}

// Pending returns the recipients still to be sent.
func (e QueueEntry) Pending() []string {
	var out []string
	for _, r := range e.Recipients {
		if r.State == RcptPending {
			out = append(out, r.Address)
		}
	}
	return out
}

// Done reports whether no recipient is pending.
func (e QueueEntry) Done() bool { return len(e.Pending()) == 0 }

func (e QueueEntry) due() int64 { return max(e.NextAttempt, e.LeaseExpires) }

// QueuePart is the outbound part of a Deliver: the message also goes to
// these external recipients, with the original envelope sender.
type QueuePart struct {
	From       string   `json:"from"`
	Recipients []string `json:"recipients"`
	// NextAttempt is the first try (unix ms, the proposer's now).
	NextAttempt int64 `json:"next_attempt"`
	// DSN carries the client's RFC 3461 parameters, when it gave any. A
	// Deliver with them is written as EncodingJSON3, which a release
	// before it does not apply. Parameters that do not fit (a proposer's
	// bug) are dropped, not refused: the mail matters more.
	DSN *QueueDSN `json:"dsn,omitempty"`
	// Submitted says the message came from an authenticated submission
	// (RFC 6409), not from another server: only such a message may be
	// DKIM-signed for its sender's domain and keep a sender in a domain
	// we host; relayed mail (a forward) is sent with an SRS sender and no
	// signature, whatever its sender claims. A Deliver with it is written
	// as EncodingJSON3; a release before it drops the mark, which leaves
	// such mail unsigned.
	Submitted bool `json:"submitted,omitempty"`
}

// QueueDSN is what the original client asked of delivery status
// notifications for the queued recipients.
type QueueDSN struct {
	EnvID string `json:"envid,omitempty"`
	Ret   string `json:"ret,omitempty"` // FULL or HDRS
	// Notify and ORCPT are per recipient, in QueuePart.Recipients' order
	// (empty: none for any): NEVER or a comma list of SUCCESS, FAILURE
	// and DELAY, and "address-type; address".
	Notify []string `json:"notify,omitempty"`
	ORCPT  []string `json:"orcpt,omitempty"`
}

// Limits on DSN parameters (RFC 3461 §4.4 bounds ENVID at 100
// characters, §4.2 ORCPT at 500).
const (
	maxEnvID = 100
	maxORCPT = 500
)

// sanitized is d with every parameter that does not fit rcpts
// recipients or the RFC's bounds left out, each on its own: the same on
// every replica, and never a reason to refuse the mail.
func (d *QueueDSN) sanitized(rcpts int) QueueDSN {
	if d == nil {
		return QueueDSN{}
	}
	out := QueueDSN{EnvID: d.EnvID, Ret: d.Ret}
	if len(out.EnvID) > maxEnvID {
		out.EnvID = ""
	}
	if out.Ret != "FULL" && out.Ret != "HDRS" {
		out.Ret = ""
	}
	if len(d.Notify) == rcpts {
		out.Notify = make([]string, rcpts)
		for i, n := range d.Notify {
			if validNotify(n) {
				out.Notify[i] = n
			}
		}
	}
	if len(d.ORCPT) == rcpts {
		out.ORCPT = make([]string, rcpts)
		for i, o := range d.ORCPT {
			if len(o) <= maxORCPT {
				out.ORCPT[i] = o
			}
		}
	}
	return out
}

// validNotify reports whether n is NEVER or a list of SUCCESS, FAILURE
// and DELAY.
func validNotify(n string) bool {
	for _, k := range strings.Split(n, ",") {
		if k != NotifyNever && k != NotifySuccess && k != NotifyFailure && k != NotifyDelay {
			return false
		}
	}
	return true
}

// at is the i-th entry of a per-recipient list, "" past its end.
func at(list []string, i int) string {
	if i < len(list) {
		return list[i]
	}
	return ""
}

// MaxQueueRecipients bounds the recipients of one entry.
const MaxQueueRecipients = 1000

func queueKey(id string) []byte { return []byte("q\x00" + id) }

var queueDuePrefix = []byte("o\x00")

func queueDueKey(due int64, id string) []byte {
	return append(append(queueDueBound(due), 0), id...)
}

// queueDueBound sorts before every due key at due and after every earlier
// one.
func queueDueBound(due int64) []byte {
	return binary.BigEndian.AppendUint64(slices.Clone(queueDuePrefix), uint64(max(due, 0)))
}

// queueID names the entry created by the command at index: one entry per
// command at most, so the index is unique and the same on every replica.
func queueID(index uint64) string { return fmt.Sprintf("%016x", index) }

// validate checks the part's recipients; long (from gatedEncoding15)
// takes local parts past 64 octets (ParseRemoteAddress), which a release
// before it refuses.
func (p *QueuePart) validate(long bool) error {
	if len(p.Recipients) == 0 || len(p.Recipients) > MaxQueueRecipients {
		return errorf(ErrInvalid, "queue entry with %d recipients", len(p.Recipients))
	}
	parse := ParseAddress
	if long {
		parse = ParseRemoteAddress
	}
	for _, r := range p.Recipients {
		if _, err := parse(r); err != nil {
			return err
		}
	}
	return nil
}

// createEntry writes a new entry for a body whose reference the caller
// adds.
func createEntry(tx *txn, p *QueuePart, hash string, size int64, replicas []string, created int64) (string, error) {
	id := queueID(tx.index)
	e := QueueEntry{ID: id, Hash: hash, Size: size, Replicas: slices.Clone(replicas), From: p.From,
		NextAttempt: p.NextAttempt, Created: created, CreatedIndex: tx.index, Submitted: p.Submitted}
	dsn := p.DSN.sanitized(len(p.Recipients))
	e.EnvID, e.Ret = dsn.EnvID, dsn.Ret
	for i, r := range p.Recipients {
		if !slices.ContainsFunc(e.Recipients, func(q QueueRecipient) bool { return q.Address == r }) {
			e.Recipients = append(e.Recipients, QueueRecipient{Address: r, State: RcptPending,
				Notify: at(dsn.Notify, i), ORCPT: at(dsn.ORCPT, i)})
		}
	}
	return id, putEntry(tx, nil, e)
}

// putEntry writes e and moves its due key from old's.
func putEntry(tx *txn, old *QueueEntry, e QueueEntry) error {
	if old != nil {
		if err := tx.del(queueDueKey(old.due(), old.ID)); err != nil {
			return err
		}
	}
	if err := tx.b.Set(queueDueKey(e.due(), e.ID), nil, nil); err != nil {
		return err
	}
	if due := max(e.due(), 0); tx.dueLow != nil && due < tx.dueLow.Load() {
		tx.dueLow.Store(due) // see txn.dueIDs
	}
	return tx.put(queueKey(e.ID), e)
}

func loadEntry(tx *txn, id string) (QueueEntry, error) {
	var e QueueEntry
	ok, err := tx.get(queueKey(id), &e)
	if err == nil && !ok {
		err = errorf(ErrNotFound, "no queue entry %s", id)
	}
	return e, err
}
