package fsm

import (
	"maps"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Quota is a gate at RCPT time (the mailbox must be under quota then), not
// here: once a sender got its 250 for a mailbox, nothing may drop the
// message for that mailbox later. A mailbox can therefore overshoot its
// quota by the messages in flight when it fills up. The only per-mailbox
// rejection here is a mailbox that no longer exists.
//
// Deliver commits one accepted message: one body, stored once per
// replica, referenced from the INBOX of every listed mailbox. The
// proposer has already written the body to Replicas; the state machine
// validates that set (the leader's enforcement of the replication factor
// happens here, deterministically on every replica), assigns each mailbox
// its next UID, and adds the references.
type Deliver struct {
	// ID names this delivery attempt. The proposer retries a commit whose
	// outcome it could not learn (leader lost, connection cut) with the
	// same ID, and an ID applied before returns its first result instead
	// of delivering twice.
	ID           string   `json:"id,omitempty"`
	Hash         string   `json:"hash"`
	Size         int64    `json:"size"`
	Replicas     []string `json:"replicas"`
	Mailboxes    []string `json:"mailboxes"`
	InternalDate int64    `json:"internal_date"` // unix ms, chosen by the proposer
	Flags        []string `json:"flags,omitempty"`
}

func (*Deliver) Type() CmdType { return CmdDeliver }

// DeliverResult tells the proposer what happened per mailbox.
type DeliverResult struct {
	UIDs     map[string]uint32 `json:"uids"`               // delivered mailbox -> UID
	Rejected map[string]string `json:"rejected,omitempty"` // mailbox -> error code
	Messages map[string]string `json:"messages,omitempty"` // mailbox -> error text
}

// MaxDeliverMailboxes bounds the recipients of one commit.
const MaxDeliverMailboxes = 10000

func (c *Deliver) apply(tx *txn) (any, error) {
	if prev, ok, err := seenDelivery(tx, c.ID); err != nil || ok {
		return prev, err
	}
	hash, err := c.validate(tx)
	if err != nil {
		return nil, err
	}
	res := DeliverResult{UIDs: map[string]uint32{}}
	flags, _ := cleanFlags(c.Flags)
	for _, addr := range c.Mailboxes {
		uid, err := c.deliverOne(tx, addr, flags)
		if err != nil {
			if res.Rejected == nil {
				res.Rejected, res.Messages = map[string]string{}, map[string]string{}
			}
			if Code(err) == "" {
				return nil, err // storage failure
			}
			res.Rejected[addr], res.Messages[addr] = Code(err), err.Error()
			continue
		}
		res.UIDs[addr] = uid
	}
	if len(res.UIDs) > 0 {
		if err := c.addRefs(tx, hash, int64(len(res.UIDs))); err != nil {
			return nil, err
		}
	}
	return res, rememberDelivery(tx, c.ID, res)
}

func (c *Deliver) validate(tx *txn) ([]byte, error) {
	hash, err := parseHash(c.Hash)
	if err != nil {
		return nil, err
	}
	if c.Size < 0 || len(c.Mailboxes) == 0 || len(c.Mailboxes) > MaxDeliverMailboxes {
		return nil, errorf(ErrInvalid, "delivery of %d bytes to %d mailboxes", c.Size, len(c.Mailboxes))
	}
	if _, err := cleanFlags(c.Flags); err != nil {
		return nil, err
	}
	var settings Settings = defaultSettings
	if _, err := tx.get(keySettings, &settings); err != nil {
		return nil, err
	}
	replicas := slices.Compact(slices.Sorted(slices.Values(c.Replicas)))
	if len(replicas) != len(c.Replicas) || len(replicas) < settings.WriteQuorum {
		return nil, errorf(ErrInvalid, "body %s has %d distinct replicas, the write quorum is %d", c.Hash, len(replicas), settings.WriteQuorum)
	}
	for _, id := range replicas {
		if ok, err := tx.has(memberKey(id)); err != nil || !ok {
			return nil, orErr(err, ErrInvalid, "replica %s of body %s is not a cluster member", id, c.Hash)
		}
	}
	return hash, nil
}

func (c *Deliver) deliverOne(tx *txn, addr string, flags []string) (uint32, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return 0, err
	}
	var mb Mailbox
	if ok, err := tx.get(mailboxKey(a), &mb); err != nil || !ok {
		return 0, orNotFound(err, "mailbox %s does not exist", a)
	}
	var f Folder
	if ok, err := tx.get(folderKey(a, "INBOX"), &f); err != nil || !ok {
		return 0, orNotFound(err, "mailbox %s has no INBOX", a)
	}
	uid := f.UIDNext
	f.UIDNext++
	msg := Message{UID: uid, Hash: c.Hash, Size: c.Size, InternalDate: c.InternalDate, Flags: flags}
	if err := tx.put(messageKey(a, f.ID, uid), msg); err != nil {
		return 0, err
	}
	if err := tx.put(folderKey(a, "INBOX"), f); err != nil {
		return 0, err
	}
	mb.UsedBytes += c.Size
	mb.Messages++
	return uid, tx.put(mailboxKey(a), mb)
}

// addRefs creates or updates the body record. A body delivered again
// (same content) may have landed on other nodes: the replica sets merge.
func (c *Deliver) addRefs(tx *txn, hash []byte, refs int64) error {
	var b Body
	ok, err := tx.get(bodyKey(hash), &b)
	if err != nil {
		return err
	}
	if !ok {
		b = Body{Size: c.Size, CreatedIndex: tx.index}
	}
	b.Refs += refs
	b.Replicas = slices.Compact(slices.Sorted(slices.Values(append(b.Replicas, c.Replicas...))))
	return tx.put(bodyKey(hash), b)
}

// dropMessages removes every message of a mailbox and releases their body
// references. A body whose count reaches zero keeps its record (with its
// replicas) until garbage collection has deleted every copy.
func dropMessages(tx *txn, a Address) error {
	prefix := []byte("m\x00" + addrPart(a) + "\x00")
	it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	release := map[string]int64{}
	for ok := it.First(); ok; ok = it.Next() {
		var m Message
		raw, err := it.ValueAndErr()
		if err == nil {
			err = decodeRecord(raw, &m)
		}
		if err != nil {
			it.Close()
			return err
		}
		release[m.Hash]++
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, h := range slices.Sorted(maps.Keys(release)) {
		raw, err := parseHash(h)
		if err != nil {
			return err
		}
		var b Body
		if ok, err := tx.get(bodyKey(raw), &b); err != nil || !ok {
			continue
		}
		b.Refs -= release[h]
		if err := tx.put(bodyKey(raw), b); err != nil {
			return err
		}
	}
	return tx.delPrefix(prefix)
}
