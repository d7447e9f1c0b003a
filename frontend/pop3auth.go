package frontend

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"powermail/node"
)

// The POP3 AUTHORIZATION state (RFC 1939 §4, RFC 5034, RFC 2595): USER
// and PASS, AUTH PLAIN, the login through the shared Authenticator, and
// the pre-authentication timer.

// plainAllowed says whether a password may be sent in the clear now: the
// Authenticator would refuse it otherwise (RFC 2595 §2.3).
func (ss *pop3Session) plainAllowed() bool {
	return ss.secure || ss.srv.auth.AllowInsecure()
}

const pop3InsecureText = "[AUTH] plaintext authentication requires TLS, use STLS first"

// pop3NoTLSText is pop3InsecureText where STLS is not offered (no
// certificate): the client can only connect to the TLS port, if any.
const pop3NoTLSText = "[AUTH] plaintext authentication requires TLS, which this port does not offer"

// insecureText is the refusal of a password sent in the clear, naming
// STLS only where it is offered.
func (ss *pop3Session) insecureText() string {
	if ss.srv.cfg.TLS == nil {
		return pop3NoTLSText
	}
	return pop3InsecureText
}

func (ss *pop3Session) userCommand(name string) {
	if !ss.plainAllowed() {
		ss.badCommand(ss.insecureText())
		return
	}
	if name == "" {
		ss.badCommand("usage: USER name")
		return
	}
	ss.user = name
	ss.ok("send PASS")
}

// passCommand takes the whole rest of the line as the password: RFC 1939
// §7 lets a server treat spaces in PASS's one argument as part of it.
func (ss *pop3Session) passCommand(password string) {
	if ss.user == "" {
		ss.badCommand("send USER first")
		return
	}
	user := ss.user
	ss.user = ""
	ss.login(user, password)
}

// authCommand runs AUTH (RFC 5034 §4). Only PLAIN (RFC 4616) is offered:
// the directory keeps password hashes, so challenge-response mechanisms
// are out of reach. AUTH alone lists the mechanisms, as many clients
// expect from the older RFC 1734 practice.
func (ss *pop3Session) authCommand(args []string) {
	if len(args) == 0 {
		ss.listing()
		ss.ok("SASL mechanisms follow")
		if ss.plainAllowed() {
			ss.line("PLAIN")
		}
		ss.line(".")
		return
	}
	if len(args) > 2 {
		ss.badCommand("usage: AUTH mechanism [initial-response]")
		return
	}
	if !strings.EqualFold(args[0], "PLAIN") {
		ss.badCommand("unsupported SASL mechanism")
		return
	}
	if !ss.plainAllowed() {
		ss.badCommand(ss.insecureText())
		return
	}
	var response string
	if len(args) == 2 {
		response = args[1]
	} else {
		// An empty challenge: "+" and a space (RFC 5034 §4).
		ss.line("+ ")
		if err := ss.w.Flush(); err != nil {
			ss.fatal = true
			return
		}
		line, err := ss.readLine()
		switch {
		case errors.Is(err, errPOP3LineTooLong):
			ss.badCommand("[AUTH] response too long")
			return
		case err != nil:
			ss.readFailed(err)
			return
		}
		response = line
	}
	if response == "*" {
		ss.errReply("authentication cancelled")
		return
	}
	authzid, authcid, password, err := pop3DecodePlain(response)
	if err != nil {
		ss.badCommand("[AUTH] " + err.Error())
		return
	}
	if authzid != "" && !strings.EqualFold(authzid, authcid) {
		ss.badCommand("[AUTH] authorization identity must be empty or the user's own")
		return
	}
	ss.login(authcid, password)
}

// login checks a password and, on success, opens the maildrop.
func (ss *pop3Session) login(user, password string) {
	a := ss.srv.auth
	// The Authenticator may first wait out earlier failures' delay.
	ctx, cancel := context.WithTimeout(ss.ctx, ss.srv.cfg.BackendTimeout+a.cfg.MaxDelay)
	login, err := a.Login(ctx, ss.ip, user, password, ss.secure)
	cancel()
	if err != nil {
		if errors.Is(err, node.ErrAuthFailed) || errors.Is(err, ErrInsecureAuth) || errors.Is(err, ErrThrottled) {
			ss.bad++
		}
		ss.errReply(ss.replyFor(err, "login"))
		return
	}
	if ss.preAuth.expired() {
		// PreAuthTimeout ran out during the check: no lock to take.
		ss.errReply(pop3PreAuthText)
		ss.quit = true
		return
	}
	if ss.tc.expired.Load() {
		// A shutdown began during the check and closes this session at
		// its next read: say so rather than +OK a maildrop it cannot use.
		ss.errReply(pop3ShutdownText)
		ss.quit = true
		return
	}
	ss.openMaildrop(login)
}

// pop3DecodePlain decodes an RFC 4616 PLAIN response: base64 of
// authzid NUL authcid NUL passwd. "=" is an empty response (RFC 5034 §4),
// which PLAIN cannot use.
func pop3DecodePlain(response string) (authzid, authcid, password string, err error) {
	if response == "=" {
		response = ""
	}
	raw, derr := base64.StdEncoding.DecodeString(response)
	if derr != nil {
		return "", "", "", errors.New("invalid base64")
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", errors.New("malformed PLAIN response")
	}
	return parts[0], parts[1], parts[2], nil
}

// pop3PreAuth is a session's limit on the time from connecting to logging
// in (POP3Config.PreAuthTimeout), whatever the client sends meanwhile.
// Its timer and the login race for one change of phase, so a session
// either logs in within the limit or times out, never both. Timing out
// makes every read of the connection fail, including one in progress.
type pop3PreAuth struct {
	phase atomic.Int32
	timer *time.Timer
}

// Phases of pop3PreAuth.
const (
	pop3Waiting int32 = iota
	pop3LoggedIn
	pop3TimedOut
)

// startPOP3PreAuth starts the limit: after d, unless the session has
// logged in, expire runs.
func startPOP3PreAuth(d time.Duration, expire func()) *pop3PreAuth {
	p := &pop3PreAuth{}
	p.timer = time.AfterFunc(d, func() {
		if p.phase.CompareAndSwap(pop3Waiting, pop3TimedOut) {
			expire()
		}
	})
	return p
}

// loggedIn ends the limit for a session that logged in. It returns false
// if the limit ran out first.
func (p *pop3PreAuth) loggedIn() bool {
	p.timer.Stop()
	return p.phase.CompareAndSwap(pop3Waiting, pop3LoggedIn)
}

// expired reports whether the limit ran out before a login.
func (p *pop3PreAuth) expired() bool { return p.phase.Load() == pop3TimedOut }

// stop stops the timer when the session ends.
func (p *pop3PreAuth) stop() { p.timer.Stop() }
