package frontend

import (
	"time"
)

// IMAP sessions whose login no longer holds (revoked.go).
//
// A logged-in session whose mailbox has been disabled or removed is
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

// armAccountCheck starts the check when addr has logged in.
func (c *imapConn) armAccountCheck(addr string) {
	c.user = addr
	c.account.start(c.srv.cfg.AccountCheckInterval, time.Now())
}

// loginRevoked reports whether the session's mailbox has been disabled
// or removed since its login (at most one directory read per
// AccountCheckInterval). It runs on the reading goroutine or in IDLE.
func (c *imapConn) loginRevoked() bool {
	if !c.authed.Load() {
		return false
	}
	revoked, err := c.account.revoked(c.srv.ctx, c.srv.store, c.user, c.srv.cfg.CommandTimeout)
	switch {
	case revoked && err != nil: // the first time only
		c.srv.log.Info("imap: mailbox disabled or removed since the login, ending the session",
			"user", c.user, "remote", c.RemoteAddr(), "err", err)
	case err != nil:
		c.srv.log.Debug("imap: could not tell whether the mailbox is still enabled", "user", c.user, "err", err)
	}
	return revoked
}

// endIfRevoked is IDLE's check at each poll: a revoked session's reader
// is woken, and drainRead ends the session with imapRevokedBye.
func (s *imapSession) endIfRevoked() bool {
	if s.raw == nil || !s.raw.loginRevoked() {
		return false
	}
	s.raw.wake()
	return true
}
