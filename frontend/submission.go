package frontend

import (
	"context"
	"errors"
	"slices"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"powermail/node"
)

// Message submission (RFC 6409): a user's own mail client sends through
// PowerMail. On a submission listener (SMTPConfig.Submission):
//
//   - AUTH (RFC 4954: PLAIN, RFC 4616; and LOGIN, which older clients
//     still use) goes through the shared Authenticator, so failures are
//     slowed per IP and per account as for IMAP and POP3; MAIL before it
//     gets 530 5.7.0;
//   - the envelope sender must be the authenticated mailbox's address,
//     with or without a +detail, or one of its aliases (a forward that
//     names the mailbox directly, or its +detail; not with
//     NoSendAsAliases), 553 5.7.1 otherwise, so a user cannot send as
//     another; after three failed AUTH exchanges the connection is
//     closed;
//   - the message's From: and Sender: fields name that address too
//     (author.go), or it is refused before anything is stored;
//   - recipients outside the hosted domains are accepted and queued, the
//     relaying port 25 refuses (relay is only for the authenticated).
//
// Invariant: nothing on a submission listener bypasses AUTH; on the other
// listeners AUTH is not offered.

var (
	_ smtp.AuthSession = (*session)(nil)
)

// AuthMechanisms is go-smtp's AUTH hook: the mechanisms offered in EHLO.
func (s *session) AuthMechanisms() []string {
	if !s.srv.cfg.Submission {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts a SASL exchange for mech.
func (s *session) Auth(mech string) (sasl.Server, error) {
	if !s.srv.cfg.Submission {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	if r := s.closing(); r != nil {
		// An AUTH pipelined behind the last failure's 421 (RFC 2920
		// lets a client send it before it reads that reply): go-smtp has
		// it buffered already. It must not check another password, or
		// log the connection in after its last word.
		return nil, r
	}
	switch mech {
	case sasl.Plain:
		return saslReplies{sasl.NewPlainServer(func(identity, user, password string) error {
			if identity != "" && node.AccountKey(identity) != node.AccountKey(user) {
				return s.failed(replyAuthFailed()) // no acting as another user
			}
			return s.login(user, password)
		})}, nil
	case sasl.Login:
		return saslReplies{&loginServer{check: s.login}}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// maxAuthFailures is how many failed AUTH exchanges a connection gets
// before it is closed; the Authenticator's delays slow each one too.
const maxAuthFailures = 3

// failed counts a failed exchange, and past maxAuthFailures closes the
// connection after this reply.
func (s *session) failed(r *smtp.SMTPError) error {
	if s.authFailures++; s.authFailures >= maxAuthFailures {
		return s.lastWord(replyTooManyAuthFailures())
	}
	return r
}

// saslReplies gives a malformed exchange the reply RFC 4954 §4 asks for
// (501), where go-sasl's own error would become go-smtp's 454.
type saslReplies struct{ sasl.Server }

func (r saslReplies) Next(response []byte) ([]byte, bool, error) {
	challenge, done, err := r.Server.Next(response)
	if _, ours := err.(*smtp.SMTPError); err != nil && !ours {
		err = replyMalformedAuth()
	}
	return challenge, done, err
}

// login checks a password and, on success, makes its mailbox the
// session's user.
func (s *session) login(user, password string) error {
	ip := peerIP(s.remote)
	_, isTLS := s.conn.TLSConnectionState()
	login, err := s.srv.cfg.Auth.Login(s.ctx, ip, user, password, isTLS)
	switch {
	case err == nil:
		s.user, s.userLogin = login.Address, login
		s.log.Info("smtp: authenticated", "user", login.Address)
		return nil
	case errors.Is(err, node.ErrAuthFailed):
		return s.failed(replyAuthFailed())
	case errors.Is(err, ErrInsecureAuth):
		return replyEncryptionRequired()
	case errors.Is(err, ErrThrottled):
		// A client's own failures slowed it: its doing, and anyone
		// can cause it, so not a warning (IMAP logs it at Info too).
		s.log.Info("smtp: authentication throttled", "err", err)
		return replyAuthUnavailable()
	}
	s.log.Warn("smtp: authentication unavailable", "err", err)
	return replyAuthUnavailable()
}

// checkSubmissionSender enforces, on a submission listener, that the
// session authenticated and that it owns the envelope sender: its
// mailbox, or that with a +detail, or an alias of it (ownsSender). A
// catch-all, a forward on top of another's mailbox or a chain of
// forwards never makes an address the user's.
func (s *session) checkSubmissionSender(from string) error {
	if !s.srv.cfg.Submission {
		return nil
	}
	if s.user == "" {
		return replyAuthRequired()
	}
	if err := s.checkAccount(); err != nil {
		return err
	}
	if from == "" {
		return replySenderNotOwned(s.user)
	}
	own, err := s.ownsSender(from)
	switch {
	case err != nil:
		return replyUnavailable()
	case !own:
		return replySenderNotOwned(s.user)
	}
	return nil
}

// accountChecker is a Deliverer that can tell whether a login still
// holds (node.Node does).
type accountChecker interface {
	AccountActive(ctx context.Context, login node.Login) error
}

// checkAccount refuses a transaction of a session whose mailbox was
// disabled or removed since its AUTH, or whose password was changed
// since: disabling a mailbox whose password leaked, or changing the
// password, must stop the spam it sends over connections already open,
// not only new logins. The login no longer holds: 530 5.7.0, and the
// connection ends with it (go-smtp keeps the session authenticated, so
// it would refuse a new AUTH as repeated); a login on a new connection
// fails, or, after a password change, needs the new password.
func (s *session) checkAccount() *smtp.SMTPError {
	ac, ok := s.srv.d.(accountChecker)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.ResolveTimeout)
	defer cancel()
	err := ac.AccountActive(ctx, s.userLogin)
	switch {
	case errors.Is(err, node.ErrPasswordChanged):
		s.log.Info("smtp: submission over a login whose password was changed since, refused", "user", s.user)
		s.user, s.userLogin = "", node.Login{}
		return s.lastWord(replyPasswordChanged())
	case errors.Is(err, node.ErrAuthFailed):
		s.log.Info("smtp: submission by a mailbox disabled or removed since its login, refused", "user", s.user)
		s.user, s.userLogin = "", node.Login{}
		return s.lastWord(replyAuthRequired())
	case err != nil:
		return replyUnavailable()
	}
	return nil
}

// ownsSender reports whether the session's user may name addr as its
// sender: its mailbox address, or that with a +detail which the
// directory resolves as it resolves the mailbox, or (unless
// NoSendAsAliases) one of its aliases. A mailbox or forward of the
// +detail name is another account: its owner's, not this user's. The
// error is the directory's, when it could not answer.
func (s *session) ownsSender(addr string) (bool, error) {
	if !node.OwnAddress(addr, s.user) {
		return s.aliasSender(addr)
	}
	if node.SameAddress(addr, s.user) {
		return true, nil
	}
	detail, err := s.resolveSender(addr)
	if errors.Is(err, node.ErrUnavailable) {
		return false, err
	}
	own, oerr := s.resolveSender(s.user)
	if errors.Is(oerr, node.ErrUnavailable) {
		return false, oerr
	}
	return err == nil && oerr == nil && slices.Equal(detail.Mailboxes, own.Mailboxes) &&
		slices.Equal(detail.External, own.External), nil
}

// aliasSender reports whether addr is an alias the user may send as
// (Deliverer.SendAsAlias): a forward that names its mailbox directly,
// or its +detail. A catch-all never is, nor an address that reaches the
// mailbox only through another forward (node/sendas.go says why).
func (s *session) aliasSender(addr string) (bool, error) {
	if s.srv.cfg.NoSendAsAliases {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.ResolveTimeout)
	defer cancel()
	return s.srv.d.SendAsAlias(ctx, s.user, addr)
}

// senderResolver is a Deliverer that resolves an address without the
// quota gate (node.Node does); others are asked through Resolve.
type senderResolver interface {
	ResolveSender(ctx context.Context, addr string) (node.Resolution, error)
}

func (s *session) resolveSender(addr string) (node.Resolution, error) {
	r, ok := s.srv.d.(senderResolver)
	if !ok {
		return s.resolve(addr, nil)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.srv.cfg.ResolveTimeout)
	defer cancel()
	return r.ResolveSender(ctx, addr)
}

// submissionExternal reports whether an authenticated submission may
// send to rcpt, which the directory says is not hosted here.
func (s *session) submissionExternal(err error) bool {
	return s.srv.cfg.Submission && s.user != "" && errors.Is(err, node.ErrNotLocal)
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): a user name and a password, each asked
// for in turn.
type loginServer struct {
	check func(user, password string) error
	user  string
	step  int
}

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) == 0 {
			return []byte("Username:"), false, nil
		}
		l.user = string(response) // sent with AUTH LOGIN as an initial response
		l.step++
		return []byte("Password:"), false, nil
	case 1:
		l.user = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(response))
	}
	return nil, false, errors.New("unexpected LOGIN response")
}
