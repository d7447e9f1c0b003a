package frontend

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Defaults for SMTPConfig. A zero field in SMTPConfig means "use the
// default"; a negative one is an error.
const (
	// DefaultMaxMessageBytes is the largest message accepted, in octets
	// as RFC 1870 counts them: after dot-unstuffing, CRLFs included,
	// the trace header fields this server prepends not included.
	DefaultMaxMessageBytes = 50 << 20
	// DefaultMaxRecipients is the number of RCPT commands accepted per
	// transaction; further ones get 452 4.5.3 (RFC 5321 §4.5.3.1.10).
	DefaultMaxRecipients = 1000
	// DefaultMaxLineLength bounds command lines and DATA text lines, in
	// octets. RFC 5321 §4.5.3.1.4/§4.5.3.1.6 ask for 512 and 1000 at
	// least; real mail exceeds 1000, so the default is generous.
	DefaultMaxLineLength = 4096
	// DefaultMaxConnsPerIP bounds simultaneous connections from one
	// remote IP address. Over it, the connection gets 421 4.7.0 and is
	// closed.
	DefaultMaxConnsPerIP = 20
	// DefaultMaxConns bounds simultaneous connections to one server from
	// all clients together, so that a flood from many addresses cannot
	// exhaust memory (each costs its buffers and a goroutine, and up to
	// 64 KiB more while a small message is replicated). Over it, the
	// connection gets 421 4.3.2 and is closed.
	DefaultMaxConns = 4000
	// DefaultReadTimeout is how long the server waits for the client to
	// send anything (a command, or the next block of message data). RFC
	// 5321 §4.5.3.2.7 asks servers to wait at least 5 minutes.
	DefaultReadTimeout = 5 * time.Minute
	// DefaultWriteTimeout bounds writing one reply.
	DefaultWriteTimeout = time.Minute
	// DefaultResolveTimeout bounds one Deliverer.Resolve call (RCPT).
	// Clients wait 5 minutes for a RCPT reply (RFC 5321 §4.5.3.2.3).
	DefaultResolveTimeout = 30 * time.Second
	// DefaultDeliverTimeout bounds one Deliverer.Deliver call, which
	// includes reading the body from the client. Clients wait 10 minutes
	// for the reply after the final dot (RFC 5321 §4.5.3.2.6).
	DefaultDeliverTimeout = 10 * time.Minute
	// DefaultMaxRejectedRcpts is how many RCPT commands a connection may
	// have refused for good (any 5xx) before its next RCPT is answered
	// 421 4.7.0 and the connection closed: RFC 5321 §7.8 asks a server
	// to close a connection that sends mostly invalid recipients "after
	// an appropriate number of 5yz (normally 550) replies". Postfix's
	// smtpd_hard_error_limit is 20 as well. Not for LMTP by default.
	DefaultMaxRejectedRcpts = 20
	// DefaultRejectedRcptDelay is the step of the delay before a
	// refused RCPT's reply: the first freeRejectedRcpts refusals of a
	// connection are answered at once, each later one waits one step
	// longer than the one before (1 s, 2 s, ... 15 s for the 20th), like
	// Postfix's smtpd_error_sleep_time past its soft error limit. Not
	// for LMTP by default.
	DefaultRejectedRcptDelay = time.Second
	// DefaultMaxSessionTime bounds a connection's life. A client that
	// keeps a connection with NOOP, RSET or VRFY (answered inside
	// go-smtp, so no command count is possible, see DESIGN.md) is
	// closed after it; a transaction in progress then gets up to
	// DeliverTimeout more to finish. MTAs reuse a connection for
	// minutes (Postfix: smtp_connection_reuse_time_limit, 300 s).
	DefaultMaxSessionTime = time.Hour
)

// freeRejectedRcpts is how many refused RCPTs a connection gets
// answered without delay.
const freeRejectedRcpts = 5

// RFC minimums below which a configuration would refuse compliant mail.
const (
	minMessageBytes = 64 << 10 // RFC 5321 §4.5.3.1.7
	minRecipients   = 100      // RFC 5321 §4.5.3.1.8
	minLineLength   = 1000     // RFC 5321 §4.5.3.1.6
)

// SMTPConfig configures an SMTP or LMTP server. Every limit is explicit;
// a zero value takes the documented default.
type SMTPConfig struct {
	// Hostname is announced in the greeting and in the "by" clause of
	// the Received: header. Default: os.Hostname(), else "localhost".
	Hostname string
	// Postmaster is the address that `RCPT TO:<postmaster>`, which names
	// no domain, is delivered to: RFC 5321 §4.5.1 has every server take
	// it. Default "postmaster@" + Hostname, if that is an address (else
	// none, and <postmaster> is refused as a path without a domain); it
	// must name a mailbox or forward of a hosted domain, or it is refused
	// like any address.
	Postmaster string

	// MaxMessageBytes is advertised as SIZE (RFC 1870) and enforced on
	// MAIL FROM SIZE=, DATA and BDAT. Default DefaultMaxMessageBytes;
	// at least 64 KiB.
	MaxMessageBytes int64
	// MaxRecipients per transaction. Default DefaultMaxRecipients; at
	// least 100.
	MaxRecipients int
	// MaxLineLength in octets, line end included, for DATA lines (BDAT
	// chunks are exempt) and command lines; a command line is cut at up
	// to 4 KiB more, 8 KiB right after a BDAT chunk (go-smtp's count; see
	// newSMTPServer). Default
	// DefaultMaxLineLength; at least 1000.
	MaxLineLength int
	// MaxConnsPerIP bounds simultaneous connections from one IP address.
	// Connections without an IP (unix sockets) are not limited. Default
	// DefaultMaxConnsPerIP.
	MaxConnsPerIP int
	// MaxConns bounds simultaneous connections from all clients
	// together, unix-socket peers included. Default DefaultMaxConns.
	MaxConns int

	// ReadTimeout is an idle timeout: it restarts whenever bytes arrive,
	// so a large message on a slow link is not cut off, but a silent
	// client is (421 4.4.2). Default DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing one reply. Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ResolveTimeout bounds each Resolve call. Default
	// DefaultResolveTimeout.
	ResolveTimeout time.Duration
	// DeliverTimeout bounds each Deliver call. Default
	// DefaultDeliverTimeout.
	DeliverTimeout time.Duration

	// MaxRejectedRcpts is how many RCPTs a connection may have refused
	// with a 5xx (unknown user, relaying denied, bad syntax, an SRS
	// address from a non-null sender, ...) before its next RCPT is
	// answered 421 4.7.0, without a directory lookup, and the
	// connection is closed. Temporary refusals (451, 452) are not
	// counted: they are this server's state, not the client's guess.
	// The count is per connection, not reset by RSET, STARTTLS or a
	// delivered message. Default DefaultMaxRejectedRcpts; for LMTP the
	// default is no limit (the MTA in front carries many senders' mail
	// over one connection and does its own limiting), and a positive
	// value applies to it too.
	MaxRejectedRcpts int
	// RejectedRcptDelay is the step of the growing delay before the
	// reply to each refused RCPT after the first freeRejectedRcpts (5)
	// of a connection. Default DefaultRejectedRcptDelay; for LMTP the
	// default is none, and a positive value applies to it too.
	RejectedRcptDelay time.Duration
	// MaxSessionTime bounds how long a connection lasts: when it is
	// reached while the server awaits a command, the client gets 421
	// 4.4.2 and the connection is closed; a transaction under way
	// (MAIL to the reply after the data) gets up to DeliverTimeout
	// more. Default DefaultMaxSessionTime, for every kind of listener.
	MaxSessionTime time.Duration

	// TLS enables STARTTLS (RFC 3207) when non-nil.
	TLS *tls.Config
	// Logger receives one line per transaction and every unexpected
	// error. Default slog.Default().
	Logger *slog.Logger
	// LMTP makes this an LMTP server (RFC 2033): LHLO instead of
	// EHLO, one reply per recipient after DATA.
	LMTP bool
	// Submission makes this a message submission server (RFC 6409,
	// submission.go): AUTH (RFC 4954) through Auth before MAIL, a sender
	// the authenticated mailbox owns, and recipients anywhere, those
	// outside the hosted domains queued.
	Submission bool
	Auth       *Authenticator
	// NoSendAsAliases stops a submission user from sending as its
	// aliases (Deliverer.SendAsAlias): only the mailbox's own address,
	// with or without a +detail, is then its sender. By default a user
	// may send as an address whose forward names its mailbox directly.
	NoSendAsAliases bool
}

// withDefaults returns cfg with zero fields filled in, or an error if a
// field is out of range.
func (cfg SMTPConfig) withDefaults() (SMTPConfig, error) {
	if cfg.Hostname == "" {
		cfg.Hostname = defaultHostname()
	}
	// A fully qualified name's root dot ("mx.example.com.") is no part
	// of a mail domain.
	if pm := "postmaster@" + strings.TrimSuffix(cfg.Hostname, "."); cfg.Postmaster == "" && isRecipient(pm) {
		// A Hostname that is no domain is announced all the same; it
		// leaves the server without a default Postmaster.
		cfg.Postmaster = pm
	}
	setDefault(&cfg.MaxMessageBytes, DefaultMaxMessageBytes)
	setDefault(&cfg.MaxRecipients, DefaultMaxRecipients)
	setDefault(&cfg.MaxLineLength, DefaultMaxLineLength)
	setDefault(&cfg.MaxConnsPerIP, DefaultMaxConnsPerIP)
	setDefault(&cfg.MaxConns, DefaultMaxConns)
	setDefault(&cfg.ReadTimeout, DefaultReadTimeout)
	setDefault(&cfg.WriteTimeout, DefaultWriteTimeout)
	setDefault(&cfg.ResolveTimeout, DefaultResolveTimeout)
	setDefault(&cfg.DeliverTimeout, DefaultDeliverTimeout)
	setDefault(&cfg.MaxSessionTime, DefaultMaxSessionTime)
	if !cfg.LMTP { // LMTP: zero stays zero, no limit (see SMTPConfig)
		setDefault(&cfg.MaxRejectedRcpts, DefaultMaxRejectedRcpts)
		setDefault(&cfg.RejectedRcptDelay, DefaultRejectedRcptDelay)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg, cfg.validate()
}

func (cfg SMTPConfig) validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(cfg.MaxMessageBytes >= minMessageBytes, "MaxMessageBytes %d is below the RFC 5321 minimum %d", cfg.MaxMessageBytes, minMessageBytes)
	check(cfg.MaxRecipients >= minRecipients, "MaxRecipients %d is below the RFC 5321 minimum %d", cfg.MaxRecipients, minRecipients)
	check(cfg.MaxLineLength >= minLineLength, "MaxLineLength %d is below the RFC 5321 minimum %d", cfg.MaxLineLength, minLineLength)
	if cfg.Postmaster != "" {
		p, why := checkRecipient(cfg.Postmaster, false)
		check(p == addrOK, "Postmaster %q is no address: %s", cfg.Postmaster, why)
	}
	check(cfg.MaxConnsPerIP > 0, "MaxConnsPerIP %d must be positive", cfg.MaxConnsPerIP)
	check(cfg.MaxConns > 0, "MaxConns %d must be positive", cfg.MaxConns)
	check(!cfg.Submission || (cfg.Auth != nil && !cfg.LMTP), "Submission needs an Authenticator and is not LMTP")
	check(cfg.ReadTimeout > 0, "ReadTimeout %v must be positive", cfg.ReadTimeout)
	check(cfg.WriteTimeout > 0, "WriteTimeout %v must be positive", cfg.WriteTimeout)
	check(cfg.ResolveTimeout > 0, "ResolveTimeout %v must be positive", cfg.ResolveTimeout)
	check(cfg.DeliverTimeout > 0, "DeliverTimeout %v must be positive", cfg.DeliverTimeout)
	check(cfg.MaxRejectedRcpts >= 0, "MaxRejectedRcpts %d must not be negative", cfg.MaxRejectedRcpts)
	check(cfg.RejectedRcptDelay >= 0, "RejectedRcptDelay %v must not be negative", cfg.RejectedRcptDelay)
	check(cfg.MaxSessionTime > 0, "MaxSessionTime %v must be positive", cfg.MaxSessionTime)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("frontend: invalid SMTPConfig: %w", err)
	}
	return nil
}

// setDefault replaces a zero *v with def. Negative values are kept, so
// that validate reports them.
func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// isRecipient reports whether addr passes as an ASCII RCPT address.
func isRecipient(addr string) bool {
	p, _ := checkRecipient(addr, false)
	return p == addrOK
}

func defaultHostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
