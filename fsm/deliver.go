package fsm

import (
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Quota is a gate at RCPT time (the mailbox must be under quota then), not
// here: once a sender got its 250 for a mailbox, nothing may drop the
// message for that mailbox later. A mailbox can therefore overshoot its
// quota by the messages in flight when it fills up. The only per-mailbox
// rejection here is a mailbox that no longer exists, or one marked as
// being removed (Mailbox.Removing, only ever set from command encoding
// 10 on): its sender is answered with a temporary refusal instead of
// a 250 for mail the removal would then take away.
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
	// Folder, when set, makes this an IMAP APPEND to that folder of the
	// one listed mailbox: the folder must exist ([TRYCREATE] otherwise)
	// and the quota is enforced here, since the client still holds the
	// message and can act on a refusal.
	Folder string `json:"folder,omitempty"`
	// Queue, when set, also queues the message for recipients outside the
	// cluster (queue.go), in this same entry: one more body reference.
	Queue *QueuePart `json:"queue,omitempty"`
	// POP3UIDL, in an append to INBOX, is the unique-id the message keeps
	// from its previous server (pop3uidl.go), from encoding 17 on.
	POP3UIDL string `json:"pop3_uidl,omitempty"`
}

func (*Deliver) Type() CmdType { return CmdDeliver }

// DeliverResult tells the proposer what happened per mailbox.
type DeliverResult struct {
	UIDs     map[string]uint32 `json:"uids"`               // delivered mailbox -> UID
	Rejected map[string]string `json:"rejected,omitempty"` // mailbox -> error code
	Messages map[string]string `json:"messages,omitempty"` // mailbox -> error text
	// UIDValidity of the folder appended to (appends only).
	UIDValidity uint32 `json:"uid_validity,omitempty"`
	// Queued is the ID of the queue entry created for Queue, if any.
	Queued string `json:"queued,omitempty"`
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
	res, refs, err := c.deliverAll(tx)
	if err != nil {
		return nil, err
	}
	if c.Queue != nil {
		if res.Queued, err = createEntry(tx, c.Queue, c.Hash, c.Size, c.Replicas, c.InternalDate); err != nil {
			return nil, err
		}
		refs++
	}
	if refs > 0 {
		if err := c.addRefs(tx, hash, refs); err != nil {
			return nil, err
		}
	}
	return res, rememberDelivery(tx, c.ID, res)
}

// deliverAll delivers to every listed mailbox and returns the result and
// the number of messages it created, one per body reference. That is not
// len(res.UIDs): a mailbox listed twice, in one spelling or two, gets a
// message each time, and each must hold its own reference, or expunging
// one would let GC delete a body the other still shows.
func (c *Deliver) deliverAll(tx *txn) (DeliverResult, int64, error) {
	res := DeliverResult{UIDs: map[string]uint32{}}
	flags, _ := canonicalFlags(c.Flags)
	var created int64
	for _, addr := range c.Mailboxes {
		uid, validity, err := c.deliverOne(tx, addr, flags)
		if err != nil {
			if res.Rejected == nil {
				res.Rejected, res.Messages = map[string]string{}, map[string]string{}
			}
			if Code(err) == "" {
				return res, 0, err // storage failure
			}
			res.Rejected[addr], res.Messages[addr] = Code(err), err.Error()
			continue
		}
		created++
		res.UIDs[addr] = uid
		if c.Folder != "" {
			res.UIDValidity = validity
		}
	}
	return res, created, nil
}

func (c *Deliver) validate(tx *txn) ([]byte, error) {
	hash, err := parseHash(c.Hash)
	if err != nil {
		return nil, err
	}
	if c.Size < 0 || (len(c.Mailboxes) == 0 && c.Queue == nil) || len(c.Mailboxes) > MaxDeliverMailboxes {
		return nil, errorf(ErrInvalid, "delivery of %d bytes to %d mailboxes", c.Size, len(c.Mailboxes))
	}
	if c.Queue != nil {
		long, err := gated15(tx)
		if err != nil {
			return nil, err
		}
		if err := c.Queue.validate(long); err != nil {
			return nil, err
		}
		if c.Folder != "" {
			return nil, errorf(ErrInvalid, "an append cannot queue")
		}
	}
	if _, err := canonicalFlags(c.Flags); err != nil {
		return nil, err
	}
	if c.Folder != "" && len(c.Mailboxes) != 1 {
		return nil, errorf(ErrInvalid, "an append names one mailbox, not %d", len(c.Mailboxes))
	}
	settings, err := tx.settings()
	if err != nil {
		return nil, err
	}
	replicas := idSet(c.Replicas)
	if len(replicas) != len(c.Replicas) || len(replicas) < settings.WriteQuorum {
		return nil, errorf(ErrInvalid, "body %s has %d distinct replicas, the write quorum is %d", c.Hash, len(replicas), settings.WriteQuorum)
	}
	for _, id := range replicas {
		if ok, err := tx.isMember(id); err != nil || !ok {
			return nil, orErr(err, ErrInvalid, "replica %s of body %s is not a cluster member", id, c.Hash)
		}
	}
	return hash, nil
}

func (c *Deliver) deliverOne(tx *txn, addr string, flags []string) (uid, validity uint32, err error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return 0, 0, err
	}
	var mb Mailbox
	if ok, err := tx.get(mailboxKey(a), &mb); err != nil || !ok {
		return 0, 0, orNotFound(err, "mailbox %s does not exist", a)
	}
	if mb.Removing {
		return 0, 0, beingRemoved(a)
	}
	folder := "INBOX"
	if c.Folder != "" {
		folder = CanonicalFolder(c.Folder)
		if mb.QuotaBytes > 0 && mb.UsedBytes+c.Size > mb.QuotaBytes {
			return 0, 0, errorf(ErrOverQuota, "mailbox %s: %d bytes would exceed the quota", a, c.Size)
		}
	}
	f, err := loadFolder(tx, a, folder)
	if err != nil {
		return 0, 0, err
	}
	if err := checkUIDRoom(tx, a, f, 1); err != nil {
		return 0, 0, err
	}
	uidl, err := c.pop3UIDL(tx, f.UIDValidity)
	if err != nil {
		return 0, 0, err
	}
	uid = f.UIDNext
	f.UIDNext++
	msg := Message{UID: uid, Hash: c.Hash, Size: c.Size, InternalDate: c.InternalDate, Flags: flags}
	if err := tx.putMessage(a, f.ID, msg); err != nil {
		return 0, 0, err
	}
	if uidl != "" {
		if err := tx.put(pop3UIDLKey(a, f.ID, uid), uidl); err != nil {
			return 0, 0, err
		}
	}
	f.count(msg, +1)
	f.ModSeq = tx.index
	tx.touch(a)
	if err := tx.put(folderKey(a, folder), f); err != nil {
		return 0, 0, err
	}
	mb.UsedBytes += c.Size
	mb.Messages++
	return uid, f.UIDValidity, tx.put(mailboxKey(a), mb)
}

// addRefs creates or updates the body record. A body delivered again
// (same content) may have landed on other nodes: the replica sets merge.
// A body being garbage-collected is revived with this delivery's replicas
// only, since its old copies may already be gone (see gc.go).
func (c *Deliver) addRefs(tx *txn, hash []byte, refs int64) error {
	var b Body
	ok := false
	if tx.bodies.mayHave(hash) { // a new body: no read that would miss
		var err error
		if ok, err = tx.get(bodyKey(hash), &b); err != nil {
			return err
		}
	}
	if !ok || b.Collecting != 0 {
		b = Body{Size: c.Size, CreatedIndex: tx.index}
	} else if b.Refs <= 0 {
		// Revived before collection began: repair skipped its listing
		// while nobody referenced it, so it may name removed members or
		// copies since found missing.
		if err := tx.markPlacement(); err != nil {
			return err
		}
	}
	b.Refs += refs
	b.Replicas = idSet(append(b.Replicas, c.Replicas...))
	return putBody(tx, hash, b)
}

// dropMessages removes every message of a mailbox and releases their body
// references.
func dropMessages(tx *txn, a Address) error {
	prefix := []byte("m\x00" + addrPart(a) + "\x00")
	it, err := tx.b.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	release := map[string]int64{}
	keys := [][]byte{} // nil once past pointDeleteLimit (see delPrefix)
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
		if keys != nil && len(keys) < pointDeleteLimit {
			keys = append(keys, slices.Clone(it.Key()))
		} else {
			keys = nil
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	if err := addBodyRefs(tx, release, -1); err != nil {
		return err
	}
	tx.touch(a)
	tx.forgetChanges() // these deletes are not logged one by one
	if err := tx.delKeys(prefix, keys); err != nil {
		return err
	}
	// The POP3 unique-ids kept for them (pop3uidl.go): none unless
	// written from encoding 17 on, when the scan finds nothing to delete.
	return tx.delPrefix(pop3UIDLPrefix(a))
}
