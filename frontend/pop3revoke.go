package frontend

import (
	"time"

	"powermail/node"
)

// pop3RevokedText ends a session whose mailbox was disabled or removed
// since its login. RFC 3206 §4 AUTH: the problem is the user's
// credentials, which no longer admit them ("an expired account, a
// locked-out account"); a client shows the text and does not retry
// with the same password as it would after SYS/TEMP.
const pop3RevokedText = "[AUTH] this mailbox has been disabled or removed, contact your administrator; closing connection"

// pop3PasswordChangedText ends a session whose mailbox's password was
// changed since its login: [AUTH] as well (RFC 3206 §4), the old
// password no longer admits the user, and the text asks for the new one.
const pop3PasswordChangedText = "[AUTH] the password of this mailbox has been changed, log in with the new one; closing connection"

// pop3NodeRemovedText ends a session on a node removed from the cluster
// since its login: RFC 3206 §4 SYS/TEMP, the client tries again later
// (through a member). Deletions are not committed: the node cannot.
const pop3NodeRemovedText = "[SYS/TEMP] this server has left the cluster, connect again; closing connection"

// loginRevoked is checked before every command in the TRANSACTION state
// (revoked.go): once the mailbox has been disabled or removed, or its
// password changed, the command is answered -ERR [AUTH] and the
// connection closed, QUIT included. The session does not enter UPDATE,
// so the messages it marked deleted stay: the user is no longer
// authorised to remove them, and RFC 1939 §6 commits deletions only on
// QUIT of a session in good standing (a session ended any other way
// removes nothing, §3). The maildrop lock is given back as the session
// ends (handle).
func (ss *pop3Session) loginRevoked() bool {
	why, err := ss.account.revoked(ss.ctx, ss.srv.store, ss.srv.cfg.BackendTimeout)
	switch why {
	case loginHolds:
		if err != nil {
			ss.log.Debug("pop3: could not tell whether the login still holds", "err", err)
		}
		return false
	case passwordChanged:
		ss.log.Info("pop3: password changed since the login, ending the session", "err", err)
		ss.errReply(pop3PasswordChangedText)
	case nodeRemoved:
		ss.log.Warn("pop3: this node was removed from the cluster, ending the session", "err", err)
		ss.errReply(pop3NodeRemovedText)
	default:
		ss.log.Info("pop3: mailbox disabled or removed since the login, ending the session", "err", err)
		ss.errReply(pop3RevokedText)
	}
	ss.quit = true
	return true
}

// armAccountCheck starts the check at login.
func (ss *pop3Session) armAccountCheck(login node.Login) {
	ss.account.start(login, ss.srv.cfg.AccountCheckInterval, time.Now())
}
