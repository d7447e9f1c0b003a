package fsm

import (
	"slices"
	"strings"
)

// FlagsStore changes the flags of messages in one folder (IMAP STORE).
// UIDs that do not exist are skipped. The result lists every message
// whose flags changed, with its new flags.
type FlagsStore struct {
	Mailbox string     `json:"mailbox"`
	Folder  string     `json:"folder"`
	UIDs    []UIDRange `json:"uids"`
	Op      FlagOp     `json:"op"`
	Flags   []string   `json:"flags"`
	// Expect, if set, is the folder the UIDs were taken from (folder.go).
	Expect *FolderCheck `json:"expect,omitempty"`
	// FoldKeywords matches keywords without case, as IMAP does (RFC 9051
	// §2.3.2): +FLAGS (work) on a message with Work keeps Work alone, and
	// -FLAGS (work) removes it. The first rule told them apart.
	FoldKeywords bool `json:"fold_keywords,omitempty"`
}

func (*FlagsStore) Type() CmdType { return CmdFlagsStore }

func (c *FlagsStore) needsJSON4() bool { return c.Expect != nil || c.FoldKeywords }

func (c *FlagsStore) apply(tx *txn) (any, error) {
	a, _, f, msgs, err := loadRanges(tx, c.Mailbox, c.Folder, c.UIDs, c.Expect)
	if err != nil {
		return nil, err
	}
	flags, err := canonicalFlags(c.Flags)
	if err != nil {
		return nil, err
	}
	if c.Op < FlagsSet || c.Op > FlagsRemove {
		return nil, errorf(ErrInvalid, "unknown flag operation %d", c.Op)
	}
	nexts, err := newFlags(msgs, c.Op, flags, c.FoldKeywords)
	if err != nil {
		return nil, err
	}
	changed := []Message{}
	for i, m := range msgs {
		if slices.Equal(nexts[i], m.Flags) {
			continue
		}
		f.count(m, -1)
		m.Flags = nexts[i]
		f.count(m, +1)
		if err := tx.putMessage(a, f.ID, m); err != nil {
			return nil, err
		}
		changed = append(changed, Message{UID: m.UID, Flags: m.Flags})
	}
	if len(changed) > 0 {
		tx.touch(a)
		f.ModSeq = tx.index
		if err := tx.put(folderKey(a, f.Name), f); err != nil {
			return nil, err
		}
	}
	return changed, nil
}

// newFlags returns each message's flags after op, before anything is
// written: a result over MaxFlags (+FLAGS on a message that has many)
// refuses the whole command, and no message changes.
func newFlags(msgs []Message, op FlagOp, flags []string, fold bool) ([][]string, error) {
	out := make([][]string, len(msgs))
	for i, m := range msgs {
		next, err := applyFlagOp(m.Flags, op, flags, fold)
		if err != nil {
			return nil, errorf(ErrInvalid, "UID %d: %s", m.UID, err.Error())
		}
		out[i] = next
	}
	return out, nil
}

func applyFlagOp(cur []string, op FlagOp, flags []string, fold bool) ([]string, error) {
	same := func(a, b string) bool { return a == b }
	if fold {
		same = strings.EqualFold // keywords are ASCII atoms (canonicalFlags)
	}
	var next []string
	switch op {
	case FlagsSet:
		next = slices.Clone(flags)
	case FlagsAdd:
		next = slices.Clone(cur)
		for _, f := range flags {
			if !slices.ContainsFunc(next, func(x string) bool { return same(x, f) }) {
				next = append(next, f) // the spelling the message has stays
			}
		}
	case FlagsRemove:
		next = slices.DeleteFunc(slices.Clone(cur), func(x string) bool {
			return slices.ContainsFunc(flags, func(f string) bool { return same(x, f) })
		})
	}
	if fold {
		next = foldDuplicates(next)
	}
	out, err := cleanFlags(next)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// foldDuplicates keeps the first of the keywords that differ only in
// case.
func foldDuplicates(flags []string) []string {
	var out []string
	for _, f := range flags {
		if !slices.ContainsFunc(out, func(x string) bool { return strings.EqualFold(x, f) }) {
			out = append(out, f)
		}
	}
	return out
}

// loadRanges loads a mailbox, one of its folders (which must be the one
// expect names, if set) and the messages of that folder in ranges (nil:
// all).
func loadRanges(tx *txn, addr, folder string, ranges []UIDRange, expect *FolderCheck) (Address, Mailbox, Folder, []Message, error) {
	a, mb, err := loadMailbox(tx, addr)
	if err != nil {
		return a, mb, Folder{}, nil, err
	}
	if err := checkRanges(ranges); err != nil {
		return a, mb, Folder{}, nil, err
	}
	f, err := loadFolder(tx, a, CanonicalFolder(folder))
	if err == nil {
		err = expect.check(f)
	}
	if err != nil {
		return a, mb, f, nil, err
	}
	msgs, err := folderMessages(tx, a, f, ranges)
	return a, mb, f, msgs, err
}

// Expunge removes messages from a folder and releases their bodies. With
// OnlyDeleted only messages flagged \Deleted go (IMAP EXPUNGE, UID
// EXPUNGE); without it every listed UID goes (POP3 DELE at QUIT). UIDs
// nil means the whole folder. The result is the removed UIDs, ascending.
type Expunge struct {
	Mailbox     string     `json:"mailbox"`
	Folder      string     `json:"folder"`
	UIDs        []UIDRange `json:"uids,omitempty"`
	OnlyDeleted bool       `json:"only_deleted,omitempty"`
	// Expect, if set, is the folder the UIDs were taken from (folder.go).
	Expect *FolderCheck `json:"expect,omitempty"`
}

func (*Expunge) Type() CmdType { return CmdExpunge }

func (c *Expunge) needsJSON4() bool { return c.Expect != nil }

func (c *Expunge) apply(tx *txn) (any, error) {
	a, mb, f, msgs, err := loadRanges(tx, c.Mailbox, c.Folder, c.UIDs, c.Expect)
	if err != nil {
		return nil, err
	}
	if c.OnlyDeleted {
		msgs = slices.DeleteFunc(msgs, func(m Message) bool { return !slices.Contains(m.Flags, `\Deleted`) })
	}
	uids := make([]uint32, len(msgs))
	for i, m := range msgs {
		uids[i] = m.UID
	}
	if len(msgs) == 0 {
		return uids, nil
	}
	tx.touch(a)
	if err := removeMessages(tx, a, &mb, &f, msgs); err != nil {
		return nil, err
	}
	return uids, tx.put(mailboxKey(a), mb)
}

// Copy adds the messages of one folder to another (IMAP COPY, MOVE). No
// body is copied: each copy is one more reference. With Move the sources
// are removed in the same entry (RFC 6851). A copy that would take the
// mailbox over its quota fails as a whole (RFC 9208 OVERQUOTA).
type Copy struct {
	Mailbox string     `json:"mailbox"`
	From    string     `json:"from"`
	To      string     `json:"to"`
	UIDs    []UIDRange `json:"uids"`
	Move    bool       `json:"move,omitempty"`
	// Expect, if set, is the source folder the UIDs were taken from
	// (folder.go).
	Expect *FolderCheck `json:"expect,omitempty"`
	// ID, if set, names this copy as a delivery ID names a delivery
	// (dedupe.go): a proposer that lost track of the commit proposes it
	// again with the same ID, and the repeat copies nothing and answers
	// an empty result (from command encoding 14 the UIDs the first gave,
	// copyrecord.go). Without it, the retry a client makes after a
	// failed COPY would copy the messages twice (RFC 9051 §6.4.7: a
	// failed COPY leaves the destination unchanged).
	ID string `json:"id,omitempty"`
}

func (c *Copy) needsJSON4() bool { return c.Expect != nil }

// needsEncoding: a release before EncodingJSON8 would drop ID and copy
// again on a repeat that the others skip.
func (c *Copy) needsEncoding() int {
	if c.ID != "" {
		return EncodingJSON8
	}
	return 0
}

// CopyResult pairs source and destination UIDs (RFC 4315 COPYUID).
type CopyResult struct {
	UIDValidity uint32   `json:"uid_validity"`
	Src         []uint32 `json:"src"`
	Dst         []uint32 `json:"dst"`
}

func (*Copy) Type() CmdType { return CmdCopy }

func (c *Copy) apply(tx *txn) (any, error) {
	if prev, repeat, err := seenCopy(tx, c.ID); err != nil || repeat {
		return prev, err
	}
	a, mb, src, msgs, err := loadRanges(tx, c.Mailbox, c.From, c.UIDs, c.Expect)
	if err != nil {
		return nil, err
	}
	if mb.Removing {
		return nil, beingRemoved(a) // what it copied would go with the mailbox
	}
	dst, err := loadFolder(tx, a, CanonicalFolder(c.To))
	if err != nil {
		return nil, err
	}
	res := CopyResult{UIDValidity: dst.UIDValidity, Src: []uint32{}, Dst: []uint32{}}
	if len(msgs) == 0 {
		return res, rememberCopy(tx, c.ID, res)
	}
	var added int64
	for _, m := range msgs {
		added += m.Size
	}
	if !c.Move && mb.QuotaBytes > 0 && mb.UsedBytes+added > mb.QuotaBytes {
		return nil, errorf(ErrOverQuota, "mailbox %s: copy of %d bytes exceeds the quota", a, added)
	}
	if err := checkUIDRoom(tx, a, dst, len(msgs)); err != nil {
		return nil, err
	}
	if src.ID == dst.ID {
		dst = src // one record, counted once
	}
	if err := copyInto(tx, a, &mb, &dst, msgs, &res); err != nil {
		return nil, err
	}
	if c.Move {
		if src.ID == dst.ID {
			src = dst
		}
		if err := removeMessages(tx, a, &mb, &src, msgs); err != nil {
			return nil, err
		}
	}
	tx.touch(a)
	if err := tx.put(mailboxKey(a), mb); err != nil {
		return nil, err
	}
	return res, rememberCopy(tx, c.ID, res)
}

// copyInto adds msgs to folder dst at new UIDs, with a body reference
// each, and writes dst; the caller writes mb. A body without a record
// refuses the copy before its first write: the record is read first.
func copyInto(tx *txn, a Address, mb *Mailbox, dst *Folder, msgs []Message, res *CopyResult) error {
	refs := map[string]int64{}
	for _, m := range msgs {
		refs[m.Hash]++
	}
	bodies, err := planBodyRefs(tx, refs, +1)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		res.Src = append(res.Src, m.UID)
		m.UID = dst.UIDNext
		dst.UIDNext++
		res.Dst = append(res.Dst, m.UID)
		if err := tx.putMessage(a, dst.ID, m); err != nil {
			return err
		}
		dst.count(m, +1)
		mb.UsedBytes += m.Size
		mb.Messages++
	}
	dst.ModSeq = tx.index
	if err := writeBodyRefs(tx, bodies); err != nil {
		return err
	}
	return tx.put(folderKey(a, dst.Name), *dst)
}
