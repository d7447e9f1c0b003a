package frontend

import (
	"crypto/tls"
	"time"
)

// Defaults for POP3Config. A zero (or negative) field means "use the
// default".
const (
	// DefaultPOP3MaxLineLength bounds a command line, CRLF included, and
	// an AUTH continuation line. RFC 2449 §4 limits client command lines
	// to 255 octets; we accept more, so that a long password in PASS or
	// an AUTH PLAIN response still fits.
	DefaultPOP3MaxLineLength = 1024
	// DefaultPOP3IdleTimeout is the autologout timer. RFC 1939 §3: "at
	// least 10 minutes".
	DefaultPOP3IdleTimeout = 10 * time.Minute
	// DefaultPOP3PreAuthTimeout bounds the time from connecting to
	// logging in, as IMAP's DefaultIMAPPreAuthTimeout does (but in total,
	// not per read): RFC 1939 §3's 10-minute autologout is for a user's
	// session, and a client that has not logged in after a minute is not
	// going to.
	DefaultPOP3PreAuthTimeout = time.Minute
	// DefaultPOP3WriteTimeout bounds each write to the client, so a
	// client that stops reading a RETR is dropped.
	DefaultPOP3WriteTimeout = time.Minute
	// DefaultPOP3MaxBadCommands is how many unknown, malformed, too long
	// or out-of-state commands, failed or throttled logins, and CAPA or
	// bare AUTH listings before login past the first pop3FreeListings, a
	// connection may send before it is closed.
	DefaultPOP3MaxBadCommands = 10
	// DefaultPOP3BackendTimeout bounds each MailStore call (the wait for
	// the first byte of a body included, not the streaming of it).
	DefaultPOP3BackendTimeout = 30 * time.Second
)

// pop3MinLineLength is RFC 2449 §4's command line limit: a server must
// accept lines this long.
const pop3MinLineLength = 255

// POP3Config configures a POP3Server. Every limit is explicit; a zero
// value takes the documented default.
type POP3Config struct {
	// Hostname is announced in the greeting and the QUIT reply. Default:
	// os.Hostname(), else "localhost".
	Hostname string
	// ServerID names this server (node) in maildrop lock holders, so an
	// operator can tell which node holds a lock. Default: Hostname.
	ServerID string

	// MaxLineLength in octets, CRLF included, for commands and AUTH
	// continuations. Default DefaultPOP3MaxLineLength; at least 255 (a
	// smaller value is raised to 255).
	MaxLineLength int
	// IdleTimeout: a client silent this long is disconnected without a
	// reply and without committing deletions (RFC 1939 §3). Default
	// DefaultPOP3IdleTimeout.
	IdleTimeout time.Duration
	// PreAuthTimeout bounds the whole time from connecting (the implicit
	// TLS handshake and STLS included) to a successful login, however
	// busy the client keeps the connection: then it gets -ERR and is
	// closed. Default DefaultPOP3PreAuthTimeout.
	PreAuthTimeout time.Duration
	// WriteTimeout bounds each write to the client. Default
	// DefaultPOP3WriteTimeout.
	WriteTimeout time.Duration
	// MaxConnsPerIP bounds simultaneous connections from one IP address;
	// unix-socket peers are not limited. Default DefaultMaxConnsPerIP.
	MaxConnsPerIP int
	// MaxConns bounds simultaneous connections from all clients
	// together. Default DefaultMaxConns.
	MaxConns int
	// MaxBadCommands: after this many bad commands, failed logins or
	// listings past the free ones the connection is closed. Default
	// DefaultPOP3MaxBadCommands.
	MaxBadCommands int
	// BackendTimeout bounds each MailStore call. Default
	// DefaultPOP3BackendTimeout.
	BackendTimeout time.Duration
	// AccountCheckInterval is how often, at most, a logged-in session
	// asks whether its mailbox has been disabled or removed, or its
	// password changed, since its login, before a command (pop3revoke.go). Default
	// DefaultAccountCheckInterval.
	AccountCheckInterval time.Duration

	// KeepUnseen leaves \Seen alone: by default QUIT sets it on the
	// messages RETR sent and the client kept (pop3seen.go).
	KeepUnseen bool

	// TLS enables STLS (RFC 2595) when non-nil. ServeTLS (implicit TLS,
	// POP3S, RFC 8314) requires it.
	TLS *tls.Config
}

// withDefaults returns cfg with zero and negative fields replaced by
// their defaults. NewPOP3Server cannot fail, so out-of-range values are
// corrected rather than refused.
func (cfg POP3Config) withDefaults() POP3Config {
	if cfg.Hostname == "" {
		cfg.Hostname = defaultHostname()
	}
	if cfg.ServerID == "" {
		cfg.ServerID = cfg.Hostname
	}
	pop3Positive(&cfg.MaxLineLength, DefaultPOP3MaxLineLength)
	cfg.MaxLineLength = max(cfg.MaxLineLength, pop3MinLineLength)
	pop3Positive(&cfg.IdleTimeout, DefaultPOP3IdleTimeout)
	pop3Positive(&cfg.PreAuthTimeout, DefaultPOP3PreAuthTimeout)
	pop3Positive(&cfg.WriteTimeout, DefaultPOP3WriteTimeout)
	pop3Positive(&cfg.MaxConnsPerIP, DefaultMaxConnsPerIP)
	pop3Positive(&cfg.MaxConns, DefaultMaxConns)
	pop3Positive(&cfg.MaxBadCommands, DefaultPOP3MaxBadCommands)
	pop3Positive(&cfg.BackendTimeout, DefaultPOP3BackendTimeout)
	pop3Positive(&cfg.AccountCheckInterval, DefaultAccountCheckInterval)
	return cfg
}

// pop3Positive replaces a zero or negative *v with def.
func pop3Positive[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
