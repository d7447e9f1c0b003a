package frontend

import (
	"context"

	"powermail/node"
)

// markRetrievedSeen sets \Seen on the messages RETR sent whole that the
// client did not delete, as the QUIT of the UPDATE state's first step,
// so that mail a POP3 client has downloaded (and left on the server)
// reads as read in IMAP. RFC 1939 has no flags; this is what mail
// administrators know from other stores (Dovecot's default). TOP sets
// nothing: clients use it to preview headers. A session that ends
// without QUIT sets nothing, as it removes nothing (RFC 1939 §6), and
// RSET forgets what RETR sent before it, as it forgets the deletions
// (Dovecot's RSET does the same).
//
// It never fails QUIT: the client already has its mail, and what QUIT
// promises is the removal. A failure is logged, and the messages stay
// unseen.
func (ss *pop3Session) markRetrievedSeen() {
	if ss.srv.cfg.KeepUnseen {
		return
	}
	var uids []uint32
	for _, m := range ss.msgs {
		if m.retrieved && !m.deleted {
			uids = append(uids, m.uid)
		}
	}
	if len(uids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.BackendTimeout)
	defer cancel()
	_, err := ss.srv.store.StoreFlags(ctx, ss.addr, pop3Maildrop, uids, node.FlagsAdd, []string{`\Seen`},
		node.FolderCheck{ID: ss.folderID, UIDValidity: ss.uidValid})
	if err != nil {
		ss.log.Warn("pop3: marking retrieved messages seen failed", "err", err, "uids", len(uids))
	}
}
