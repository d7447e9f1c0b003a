package fsm

// FolderDeleteIf is the condition of a FolderDelete that takes back a
// folder made moments before: node's undo of a RENAME INBOX in pieces
// refused before any message moved, and the IMAP frontend's undo of the
// superior names a failed CREATE or RENAME made. Each reads the folder,
// finds it as made and empty, then deletes it; as two entries, a
// message another session APPENDs or COPYs into it between the two
// (or a child it creates) went with it. Checked by apply in the delete's
// own entry, nothing can land between: the folder is deleted as checked,
// or kept with ErrDeleteCondition.
//
// The identity (ID and UIDVALIDITY, as FolderCheck) keeps the delete
// off a folder that took the name since; Empty keeps every message,
// whenever it came; UIDNext (when not 0) also keeps a folder some
// message reached and left; NoChild keeps a folder another session
// created a folder below, which would be left without its parent.
type FolderDeleteIf struct {
	ID          uint64 `json:"id"`
	UIDValidity uint32 `json:"uid_validity"`
	UIDNext     uint32 `json:"uid_next,omitempty"`
	Empty       bool   `json:"empty,omitempty"`
	NoChild     bool   `json:"no_child,omitempty"`
}

// check reports whether f, whose mailbox does (hasChild) or does not
// hold a folder below it, meets c: nil when it does, else an error of
// kind ErrDeleteCondition saying what differs. A nil c is met by any.
func (c *FolderDeleteIf) check(f Folder, hasChild bool) error {
	switch {
	case c == nil:
		return nil
	case c.ID != f.ID || c.UIDValidity != f.UIDValidity:
		return errorf(ErrDeleteCondition, "folder %s is another folder than the one checked (renamed, or deleted and created again)", f.Name)
	case c.UIDNext != 0 && c.UIDNext != f.UIDNext:
		return errorf(ErrDeleteCondition, "folder %s has taken messages since it was checked (UIDNEXT %d, was %d)", f.Name, f.UIDNext, c.UIDNext)
	case c.Empty && f.Messages != 0:
		return errorf(ErrDeleteCondition, "folder %s holds %d messages", f.Name, f.Messages)
	case c.NoChild && hasChild:
		return errorf(ErrDeleteCondition, "folder %s has a folder below it", f.Name)
	}
	return nil
}

// checkIf refuses the delete of f, a folder of a, when the command's
// condition does not hold. An entry written before EncodingJSON16
// cannot carry one (a release before it drops the field and deletes),
// so a condition in it is not taken, as such a release would not.
func (c *FolderDelete) checkIf(tx *txn, a Address, f Folder) error {
	if c.If == nil || c.written < EncodingJSON16 {
		return nil
	}
	child := false
	if c.If.NoChild {
		var err error
		if child, err = hasPrefix(tx.b, folderKey(a, f.Name+"/")); err != nil {
			return err
		}
	}
	return c.If.check(f, child)
}
