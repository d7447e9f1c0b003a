package fsm

import (
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// FolderRename renames a folder and every folder below it (RFC 9051
// section 6.3.6). A renamed folder keeps its ID, UIDVALIDITY and UIDs:
// its messages are keyed by folder ID, so only folder records move.
// Renaming INBOX is special: its messages move to a new folder with the
// new name, and INBOX stays, empty, with its UIDVALIDITY and UIDNEXT.
type FolderRename struct {
	Mailbox string `json:"mailbox"`
	From    string `json:"from"`
	To      string `json:"to"`
	// Distinct gives the folder that renaming INBOX creates a UIDVALIDITY
	// of its own (uidvalidity.go).
	Distinct bool `json:"distinct_uidvalidity,omitempty"`
	// InboxChild lets INBOX be renamed to a folder below it (RENAME INBOX
	// INBOX/old, RFC 9051 §6.3.6): INBOX's messages move there and INBOX
	// stays. The first rule refused it as a rename into its own child.
	InboxChild bool `json:"inbox_child,omitempty"`
}

func (*FolderRename) Type() CmdType { return CmdFolderRename }

func (c *FolderRename) needsJSON4() bool { return c.Distinct || c.InboxChild }

func (c *FolderRename) apply(tx *txn) (any, error) {
	a, mb, err := loadMailbox(tx, c.Mailbox)
	if err != nil {
		return nil, err
	}
	from, to := CanonicalFolder(c.From), CanonicalFolder(strings.TrimSuffix(c.To, "/"))
	if err := checkFolderName(to); err != nil {
		return nil, err
	}
	intoChild := strings.HasPrefix(to, from+"/") && !(from == "INBOX" && c.InboxChild)
	if to == "INBOX" || to == from || intoChild {
		return nil, errorf(ErrInvalid, "cannot rename %s to %s", from, to)
	}
	src, err := loadFolder(tx, a, from)
	if err != nil {
		return nil, err
	}
	tx.touch(a)
	if from == "INBOX" {
		return nil, renameInbox(tx, a, &mb, src, to, c.Distinct)
	}
	moves := []Folder{src}
	children, err := scanFolders(tx.b, a, from+"/")
	if err != nil {
		return nil, err
	}
	moves = append(moves, children...)
	for _, f := range moves {
		if ok, err := tx.has(folderKey(a, to+strings.TrimPrefix(f.Name, from))); err != nil || ok {
			return nil, orExists(err, "folder %s already exists", to+strings.TrimPrefix(f.Name, from))
		}
	}
	for _, f := range moves {
		if err := tx.del(folderKey(a, f.Name)); err != nil {
			return nil, err
		}
		f.Name = to + strings.TrimPrefix(f.Name, from)
		f.ModSeq = tx.index
		if err := tx.put(folderKey(a, f.Name), f); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func renameInbox(tx *txn, a Address, mb *Mailbox, inbox Folder, to string, distinct bool) error {
	if ok, err := tx.has(folderKey(a, to)); err != nil || ok {
		return orExists(err, "folder %s already exists", to)
	}
	dst, err := newFolder(tx, mb, to, "", distinct)
	if err != nil {
		return err
	}
	dst.UIDNext = inbox.UIDNext
	msgs, err := folderMessages(tx, a, inbox, nil)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := tx.delMessage(a, inbox.ID, m.UID); err != nil {
			return err
		}
		if err := tx.putMessage(a, dst.ID, m); err != nil {
			return err
		}
	}
	dst.Messages, dst.Bytes, dst.Unseen, dst.Deleted = inbox.Messages, inbox.Bytes, inbox.Unseen, inbox.Deleted
	inbox.Messages, inbox.Bytes, inbox.Unseen, inbox.Deleted = 0, 0, 0, 0
	dst.LowUID, inbox.LowUID = inbox.LowUID, inbox.UIDNext // dst has INBOX's UIDs
	inbox.ModSeq = tx.index
	for _, f := range []Folder{inbox, dst} {
		if err := tx.put(folderKey(a, f.Name), f); err != nil {
			return err
		}
	}
	return tx.put(mailboxKey(a), *mb)
}

// scanFolders returns the folders of a whose names start with prefix.
func scanFolders(r pebble.Reader, a Address, prefix string) ([]Folder, error) {
	p := append(folderPrefix(a), prefix...)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Folder
	for ok := it.First(); ok; ok = it.Next() {
		var f Folder
		if err := decodeRecord(it.Value(), &f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, it.Error()
}
