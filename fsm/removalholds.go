package fsm

import (
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Holds on the mark of a mailbox being removed, from command encoding 12:
//
//	"h\x00" domain "\x00" local "\x00" remover   empty: that removal holds the mark
//
// Below 12 the mark (Mailbox.Removing) is one bit that any removal sets
// and any clears: of two removals of one mailbox at once, the one that
// set it cleared it when it failed while the other ran on, and mail was
// then taken only to be removed with the mailbox. From 12 each removal
// names itself (MailboxUpdate.Remover, a token it makes up), the mark
// stays while any removal holds it, and a removal that fails releases
// only its own hold. The mailbox record keeps the bit, so that RCPT and
// Deliver still read one record; apply keeps it equal to "some hold".
//
// A mark with no holds (set below 12, or before the raise) and one set
// by an update that names no remover are held by the empty remover,
// which no removal releases by name: only a clear that names no remover
// or the mailbox's removal ends it. At 12 and 13 such a clear ends the
// whole mark, the holds of removals still under way with it; from 14 it
// ends the hold of no known owner alone, as a named release ends its
// own. A removal refused at its end (a forward now keeps copies) then
// ends only its own hold, and another removal still emptying the
// mailbox keeps the mark until it meets the refusal too: clearing the
// whole mark let in mail (answered 250) that the other removal's last,
// open-ended piece then expunged. A hold left by a removal whose node
// died stays from 14 when a removal is then refused, until the
// mailbox's removal ends it. The
// holds go with the mailbox (MailboxRemove), as the mark does. They are
// keys of the state, so snapshots and state digests (cluster
// check-state) carry them as they carry every key.

// MaxRemovalHolds bounds the holds on one mailbox's mark. A removal
// that finds as many does not add its own: the mark stays set while
// those are held, and it runs as one that found a mark below 12 did.
// Holds are left behind only by removals whose node died part way;
// the mailbox's removal clears them all.
const MaxRemovalHolds = 16

// MaxRemoverLen is the longest MailboxUpdate.Remover apply takes.
const MaxRemoverLen = 64

func removalHoldPrefix(a Address) []byte { return []byte("h\x00" + addrPart(a) + "\x00") }

func removalHoldKey(a Address, remover string) []byte {
	return append(removalHoldPrefix(a), remover...)
}

// remover is the removal the update names: Remover, taken only from an
// entry written in EncodingJSON12 or later (a release before it drops
// the field).
func (c *MailboxUpdate) remover() string {
	if c.written < EncodingJSON12 {
		return ""
	}
	return c.Remover
}

// checkRemover refuses a remover that cannot be a key component.
func (c *MailboxUpdate) checkRemover(a Address) error {
	r := c.remover()
	if len(r) > MaxRemoverLen || strings.ContainsRune(r, 0) {
		return errorf(ErrInvalid, "mailbox %s: a remover is at most %d bytes, without NUL", a, MaxRemoverLen)
	}
	return nil
}

// applyHolds sets or releases the update's hold on mb's mark, under the
// rules of encoding 12 (and, for a clear naming no remover, 14), and
// sets mb.Removing to whether any hold is left.
func (c *MailboxUpdate) applyHolds(tx *txn, a Address, mb *Mailbox) error {
	p := removalHoldPrefix(a)
	n, err := tx.count(p, MaxRemovalHolds)
	if err != nil {
		return err
	}
	if mb.Removing && n == 0 {
		// Set with no holds: its owner is not known.
		if err := tx.b.Set(removalHoldKey(a, ""), nil, nil); err != nil {
			return err
		}
		n = 1
	}
	key := removalHoldKey(a, c.remover())
	switch {
	case *c.Removing:
		held, err := tx.has(key)
		if err != nil {
			return err
		}
		if !held && n < MaxRemovalHolds {
			if err := tx.b.Set(key, nil, nil); err != nil {
				return err
			}
		}
		n = max(n, 1)
	case c.remover() == "":
		own, err := gated14(tx)
		if err != nil {
			return err
		}
		if !own { // below 14: the whole mark
			if err := delRemovalHolds(tx, a); err != nil {
				return err
			}
			n = 0
			break
		}
		// From 14: the hold of no known owner alone (key), as a named
		// release ends its own.
		fallthrough
	default:
		if err := tx.del(key); err != nil {
			return err
		}
		if n, err = tx.count(p, 1); err != nil {
			return err
		}
	}
	mb.Removing = n > 0
	return nil
}

// delRemovalHolds deletes the holds on a's mark, key by key: there are
// at most MaxRemovalHolds, and none below encoding 12, where nothing is
// then written.
func delRemovalHolds(tx *txn, a Address) error {
	p := removalHoldPrefix(a)
	keys, err := tx.keysUnder(p, pointDeleteLimit)
	if err != nil {
		return err
	}
	if keys == nil { // more than the limit: not written by apply
		return tx.delPrefix(p)
	}
	for _, k := range keys {
		if err := tx.del(k); err != nil {
			return err
		}
	}
	return nil
}

// RemovalHolds is how many removals hold the mark of addr being removed
// (MailboxUpdate.Remover): 0 when it is not marked, 1 for a mark whose
// owner is not known (set below encoding 12).
func (s *State) RemovalHolds(addr string) (int, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return 0, err
	}
	mb, err := s.Mailbox(addr)
	if err != nil || !mb.Removing {
		return 0, err
	}
	n := 0
	err = s.view(func(r pebble.Reader) error {
		p := removalHoldPrefix(a)
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		return it.Close()
	})
	return max(n, 1), err
}
