package fsm

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// POP3 unique-ids kept from a previous server (RFC 1939 §7).
//
//	"i\x00" domain "\x00" local "\x00" folderID(8, BE) uid(4, BE)   unique-id (JSON string)
//
// A message restored into INBOX from another server may keep the
// unique-id that server gave it, so that POP3 clients which leave mail
// on the server do not download it all again. Such ids live in a key
// range of their own, beside the message record, so that message
// records and the delivery path do not grow for the messages without
// one (all mail delivered here). They are written only under a cluster
// setting of 17 or more (gated17), by a Deliver naming POP3UIDL or by
// POP3UIDLSet, and deleted with their message: delMessage (expunge,
// folder delete, INBOX rename, a moved message's source) and
// dropMessages (mailbox removal). A message without one has the
// unique-id "<UIDVALIDITY>.<UID>" (frontend).

// MaxPOP3UIDL is the longest unique-id RFC 1939 §7 allows.
const MaxPOP3UIDL = 70

// MaxPOP3UIDLSet bounds the unique-ids one POP3UIDLSet gives.
const MaxPOP3UIDLSet = 1000

func pop3UIDLPrefix(a Address) []byte { return []byte("i\x00" + addrPart(a) + "\x00") }

func pop3UIDLFolderPrefix(a Address, folderID uint64) []byte {
	return binary.BigEndian.AppendUint64(pop3UIDLPrefix(a), folderID)
}

func pop3UIDLKey(a Address, folderID uint64, uid uint32) []byte {
	return binary.BigEndian.AppendUint32(pop3UIDLFolderPrefix(a, folderID), uid)
}

// ValidPOP3UIDL reports whether s is a unique-id as RFC 1939 §7 has it:
// 1 to 70 characters from 0x21 to 0x7E.
func ValidPOP3UIDL(s string) bool {
	if len(s) == 0 || len(s) > MaxPOP3UIDL {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// StorablePOP3UIDL reports whether s may be kept as the unique-id of a
// message in a folder of UIDVALIDITY validity: valid, and not of the
// form "<validity>.<digits>" that the folder's other messages have,
// which one of them could then share.
func StorablePOP3UIDL(s string, validity uint32) bool {
	if !ValidPOP3UIDL(s) {
		return false
	}
	rest, ok := strings.CutPrefix(s, strconv.FormatUint(uint64(validity), 10)+".")
	if !ok || rest == "" {
		return true
	}
	return strings.Trim(rest, "0123456789") != ""
}

// needsEncoding: a release before EncodingJSON17 would drop POP3UIDL.
func (c *Deliver) needsEncoding() int {
	if c.POP3UIDL != "" {
		return EncodingJSON17
	}
	return 0
}

// pop3UIDL is the unique-id a Deliver keeps for its message, "" for
// none: below the gated setting the field is not honoured, as a release
// before it would drop it. Only an append to INBOX may name one.
func (c *Deliver) pop3UIDL(tx *txn, validity uint32) (string, error) {
	if c.POP3UIDL == "" {
		return "", nil
	}
	if ok, err := gated17(tx); err != nil || !ok {
		return "", err
	}
	if c.Folder == "" || CanonicalFolder(c.Folder) != "INBOX" {
		return "", errorf(ErrInvalid, "a POP3 unique-id is kept for an append to INBOX only")
	}
	if !StorablePOP3UIDL(c.POP3UIDL, validity) {
		return "", errorf(ErrInvalid, "POP3 unique-id %q is not 1 to %d characters from 0x21 to 0x7E, or has this folder's own form", c.POP3UIDL, MaxPOP3UIDL)
	}
	return c.POP3UIDL, nil
}

// POP3UIDLSet gives INBOX messages of a mailbox the unique-ids they had
// on a previous server, after they were added (a restore that meets the
// list of ids after the messages). A message that is gone, or that has
// a unique-id already, is left as it is: the first id given stands.
type POP3UIDLSet struct {
	Mailbox string `json:"mailbox"`
	// UIDValidity is INBOX's, as the proposer read the UIDs under it.
	UIDValidity uint32 `json:"uid_validity"`
	// UIDLs maps a UID to its unique-id.
	UIDLs map[uint32]string `json:"uidls"`
}

func (*POP3UIDLSet) Type() CmdType { return CmdPOP3UIDLSet }

// needsEncoding: a release before EncodingJSON17 does not know the
// command, and must stop on its encoding rather than meet an unknown type.
func (*POP3UIDLSet) needsEncoding() int { return EncodingJSON17 }

// POP3UIDLSetResult says how many unique-ids were kept.
type POP3UIDLSetResult struct {
	Set int `json:"set"`
}

func (c *POP3UIDLSet) apply(tx *txn) (any, error) {
	if ok, err := gated17(tx); err != nil || !ok {
		return nil, orErr(err, ErrInvalid, "POP3 unique-ids are kept from command encoding %d on", gatedEncoding17)
	}
	if len(c.UIDLs) > MaxPOP3UIDLSet {
		return nil, errorf(ErrInvalid, "%d POP3 unique-ids in one command, at most %d", len(c.UIDLs), MaxPOP3UIDLSet)
	}
	a, _, err := loadMailbox(tx, c.Mailbox)
	if err != nil {
		return nil, err
	}
	f, err := loadFolder(tx, a, "INBOX")
	if err != nil {
		return nil, err
	}
	if f.UIDValidity != c.UIDValidity {
		return nil, errorf(ErrNotFound, "INBOX of %s has UIDVALIDITY %d, not %d", a, f.UIDValidity, c.UIDValidity)
	}
	uids := slices.Sorted(func(yield func(uint32) bool) {
		for u := range c.UIDLs {
			if !yield(u) {
				return
			}
		}
	})
	for _, uid := range uids {
		if !StorablePOP3UIDL(c.UIDLs[uid], f.UIDValidity) {
			return nil, errorf(ErrInvalid, "POP3 unique-id %q of UID %d is not 1 to %d characters from 0x21 to 0x7E, or has this folder's own form", c.UIDLs[uid], uid, MaxPOP3UIDL)
		}
	}
	res := POP3UIDLSetResult{}
	for _, uid := range uids {
		if ok, err := tx.has(messageKey(a, f.ID, uid)); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		if ok, err := tx.has(pop3UIDLKey(a, f.ID, uid)); err != nil || ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := tx.put(pop3UIDLKey(a, f.ID, uid), c.UIDLs[uid]); err != nil {
			return nil, err
		}
		res.Set++
	}
	return res, nil
}

// POP3UIDLs returns the unique-ids kept for messages of the folder with
// ID folderID of addr whose UIDs fall in uids, by UID (none: an empty
// map). The range keeps the scan to the messages asked about: every
// message deleted leaves a tombstone of its unique-id's key whether it
// had one or not (delMessage), and a maildrop emptied by POP3 over and
// over would otherwise have each login walk all of them, as the
// folder's LowUID spares its message scans.
func (s *State) POP3UIDLs(addr string, folderID uint64, uids UIDRange) (map[uint32]string, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return nil, err
	}
	out := map[uint32]string{}
	if uids[0] > uids[1] {
		return out, nil
	}
	prefix := pop3UIDLFolderPrefix(a, folderID)
	lower := pop3UIDLKey(a, folderID, uids[0])
	upper := prefixEnd(prefix)
	if uids[1] < ^uint32(0) {
		upper = pop3UIDLKey(a, folderID, uids[1]+1)
	}
	err = s.view(func(r pebble.Reader) error {
		it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			key := it.Key()
			if len(key) != len(prefix)+4 {
				continue
			}
			raw, err := it.ValueAndErr()
			var v string
			if err == nil {
				err = decodeRecord(raw, &v)
			}
			if err != nil {
				it.Close()
				return err
			}
			out[binary.BigEndian.Uint32(key[len(prefix):])] = v
		}
		return it.Close()
	})
	return out, err
}
