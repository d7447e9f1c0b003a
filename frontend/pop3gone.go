package frontend

import (
	"cmp"
	"context"
	"slices"

	"powermail/node"
)

// expungedElsewhere tells, after a body could not be opened, whether the
// message has left the maildrop since the session's snapshot: another
// session (IMAP, or POP3 after its lock lapsed) expunged or moved it,
// and once no message refers to the body it is collected. Retrying can
// never bring it back, so RETR and TOP answer -ERR without [SYS/TEMP],
// which would have the client try again for ever (RFC 2449 §8.1.2).
// A maildrop removed and added again counts as gone too. If the
// maildrop cannot be read either, the store's error stands.
func (ss *pop3Session) expungedElsewhere(uid uint32) bool {
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.BackendTimeout)
	defer cancel()
	view, err := ss.srv.store.View(ctx, ss.addr, pop3Maildrop)
	if err != nil {
		return false
	}
	if view.Folder.ID != ss.folderID || view.Folder.UIDValidity != ss.uidValid {
		return true
	}
	return !viewHolds(view, uid)
}

// viewHolds tells whether a folder view (in UID order) holds uid.
func viewHolds(view node.FolderView, uid uint32) bool {
	_, ok := slices.BinarySearchFunc(view.Messages, uid, func(m node.StoredMessage, u uint32) int { return cmp.Compare(m.UID, u) })
	return ok
}
