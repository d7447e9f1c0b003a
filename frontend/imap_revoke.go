package frontend

import (
	"time"

	"powermail/node"
)

// IMAP sessions whose login no longer holds (revoked.go).
//
// A logged-in session whose mailbox has been disabled or removed, or
// whose mailbox's password has been changed since its login, is
// ended the way a drain ends it (imap_drain.go): at a command's start,
// with a BYE and io.EOF to the library, so the command is not executed.
// The check is made when octets arrive at a command's start (readRaw),
// and at IDLE's polls, which wake the reader as Shutdown does.
//
// Commands that came in a read that passed the check (pipelined behind
// the command checked, and buffered by the library) run: they arrived
// before the change was seen. So do those within AccountCheckInterval
// of the last check. A session that does nothing at all is not woken;
// its next command ends it.

// imapRevokedBye is the last line of a session whose mailbox was
// disabled or removed since its login. RFC 9051 §7.1 CONTACTADMIN ("the
// user should contact the system administrator or support desk") is
// the code that says what the user can do: only an administrator can
// enable the mailbox again. AUTHENTICATIONFAILED and EXPIRED would have
// a client ask for a new password, which does not help (the login of a
// disabled mailbox fails whatever the password), and UNAVAILABLE would
// have it reconnect at once.
const imapRevokedBye = "* BYE [CONTACTADMIN] This mailbox has been disabled or removed, contact your administrator\r\n"

// imapPasswordChangedBye is the last line of a session whose mailbox's
// password was changed since its login. RFC 9051 §7.1 EXPIRED: access
// is no longer permitted with that passphrase and the client or user
// should get a new one, which is the case exactly; a client asks the
// user for the password before it logs in again, where after
// UNAVAILABLE it would retry the old one at once and after
// AUTHENTICATIONFAILED learn nothing of why.
const imapPasswordChangedBye = "* BYE [EXPIRED] The password of this mailbox has been changed, log in with the new one\r\n"

// imapNodeRemovedBye is the last line of a session on a node removed
// from the cluster since its login: the node gets no more changes, so
// every read would show a frozen mailbox and every write fail, and an
// IDLE would wait for ever. RFC 9051 §7.1 UNAVAILABLE: temporary, and
// the client reconnects, to a member (the removed node's /readyz says
// not ready, so a balancer sends it elsewhere).
const imapNodeRemovedBye = "* BYE [UNAVAILABLE] This server has left the cluster, connect again\r\n"

// imapByeFor is the BYE that ends a session whose login no longer holds.
func imapByeFor(why revocation) string {
	switch why {
	case passwordChanged:
		return imapPasswordChangedBye
	case nodeRemoved:
		return imapNodeRemovedBye
	}
	return imapRevokedBye
}

// armAccountCheck starts the check when login has logged in.
func (c *imapConn) armAccountCheck(login node.Login) {
	c.account.start(login, c.srv.cfg.AccountCheckInterval, time.Now())
}

// loginRevoked reports why the session's login no longer holds (its
// mailbox disabled or removed, or its password changed, since the
// login), or loginHolds (at most one directory read per
// AccountCheckInterval). It runs on the reading goroutine or in IDLE.
func (c *imapConn) loginRevoked() revocation {
	if !c.authed.Load() {
		return loginHolds
	}
	why, err := c.account.revoked(c.srv.ctx, c.srv.store, c.srv.cfg.CommandTimeout)
	user := c.account.login.Address
	switch {
	case why != loginHolds && err != nil: // the first time only
		c.srv.log.Info("imap: the login no longer holds, ending the session",
			"user", user, "remote", c.RemoteAddr(), "err", err)
	case err != nil:
		c.srv.log.Debug("imap: could not tell whether the login still holds", "user", user, "err", err)
	}
	return why
}

// endIfRevoked is IDLE's check at each poll: a revoked session's reader
// is woken, and drainRead ends the session with its BYE (imapByeFor).
func (s *imapSession) endIfRevoked() bool {
	if s.raw == nil || s.raw.loginRevoked() == loginHolds {
		return false
	}
	s.raw.wake()
	return true
}
