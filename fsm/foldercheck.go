package fsm

// FolderCheck names the folder a command's UIDs were taken from, by the
// folder's ID and UIDVALIDITY. Commands on messages name a folder by its
// name, which another client may have given to a different folder since
// (RENAME A B then RENAME C A, or DELETE and CREATE): without the check,
// a session's STORE, EXPUNGE, COPY or MOVE, or a POP3 QUIT after the
// mailbox was removed and added again, would change the other folder's
// messages that happen to have the same UIDs. The ID alone is not
// enough (a mailbox created again numbers its folders from 1 again), nor
// the UIDVALIDITY alone (folders created by one entry share it).
//
// A release that does not know the field would apply the command
// without it, so a command that carries it is written in EncodingJSON4,
// which such a release refuses to apply (command.go).
type FolderCheck struct {
	ID          uint64 `json:"id"`
	UIDValidity uint32 `json:"uid_validity"`
}

// check refuses f if it is not the expected folder; a nil check passes.
func (c *FolderCheck) check(f Folder) error {
	if c == nil || (c.ID == f.ID && c.UIDValidity == f.UIDValidity) {
		return nil
	}
	return errorf(ErrFolderChanged, "folder %s is no longer the one selected (renamed, or deleted and created again)", f.Name)
}
