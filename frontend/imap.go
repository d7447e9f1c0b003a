package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for IMAPConfig. A zero field means "use the default".
const (
	// DefaultIMAPMaxAppendBytes is the largest message APPEND accepts,
	// advertised as APPENDLIMIT (RFC 7889). It matches the SMTP default,
	// so that any message delivered can also be appended (to Sent, say).
	DefaultIMAPMaxAppendBytes = DefaultMaxMessageBytes
	// DefaultIMAPIdleTimeout is the autologout timer of an authenticated
	// client: it restarts whenever bytes arrive, IDLE included. RFC 9051
	// section 5.4 asks for at least 30 minutes.
	DefaultIMAPIdleTimeout = 30 * time.Minute
	// DefaultIMAPWriteTimeout bounds each write to a client: one that
	// stops reading is disconnected instead of holding its slot.
	DefaultIMAPWriteTimeout = 2 * time.Minute
	// DefaultIMAPPreAuthTimeout is the autologout timer before login. RFC
	// 9051 section 5.4 allows it to be shorter than the idle timer.
	DefaultIMAPPreAuthTimeout = time.Minute
	// DefaultIMAPMaxConnsPerIP bounds simultaneous connections from one IP
	// address. IMAP clients keep several connections per account (one per
	// watched folder), and offices share an address, so it is higher than
	// SMTP's.
	DefaultIMAPMaxConnsPerIP = 50
	// DefaultIMAPMaxConns bounds simultaneous connections from all clients
	// together. Sessions are long-lived (IDLE) and each keeps its selected
	// folder's snapshot, so this bounds memory under a flood from many
	// addresses; a large node may raise it.
	DefaultIMAPMaxConns = 10000
	// DefaultIMAPMaxConnsPerUserIP bounds the logged-in sessions of one
	// mailbox from one address, on one node: enough for a client's
	// connection per watched folder, not for a client stuck opening more
	// until the address's whole allowance is gone.
	DefaultIMAPMaxConnsPerUserIP = 10
	// DefaultIMAPCommandTimeout bounds each MailStore call of a command
	// (the read-index barrier included).
	DefaultIMAPCommandTimeout = time.Minute
	// DefaultIMAPTransferTimeout bounds one message transfer: an APPEND
	// (reading the literal from the client and storing it on W replicas),
	// or sending one message's body in a FETCH.
	DefaultIMAPTransferTimeout = 10 * time.Minute
	// DefaultIMAPPollInterval is how often an IDLE session polls its folder
	// even without a change notification: a safety net under Watch.
	DefaultIMAPPollInterval = 5 * time.Second
	// DefaultIMAPMaxSearchKeys bounds the keys of one SEARCH, NOT and OR
	// included: each is a step for every message of the folder. Clients
	// send a few, or a few dozen for a saved search or a filter.
	DefaultIMAPMaxSearchKeys = 256
	// DefaultIMAPMaxSearchTextKeys bounds a SEARCH's BODY and TEXT keys,
	// each of which reads every message it reaches from its start: one
	// per word searched for is what clients send.
	DefaultIMAPMaxSearchTextKeys = 32
	// DefaultIMAPMaxFetchSections bounds the body sections (BODY[...],
	// BINARY[...], BINARY.SIZE[...]) of one FETCH, each of which may
	// read every message it names from its start. Clients ask for a
	// header and a part or two at a time.
	DefaultIMAPMaxFetchSections = 64
)

// RFC floors and wire ceilings of IMAPConfig.
const (
	imapMinIdleTimeout = 30 * time.Minute // RFC 9051 section 5.4
	imapMaxAppendBytes = math.MaxUint32   // APPENDLIMIT is a number (RFC 7889); go-imap's is a uint32
)

// IMAPConfig configures an IMAPServer. Every limit is explicit; a zero
// value takes the documented default.
type IMAPConfig struct {
	// TLS enables STARTTLS (RFC 9051 section 6.2.1) when non-nil, and is
	// the certificate ServeTLS uses for implicit TLS (RFC 8314).
	TLS *tls.Config

	// MaxAppendBytes is the largest APPEND literal, advertised as
	// APPENDLIMIT. Default DefaultIMAPMaxAppendBytes; at most 2^32-1.
	MaxAppendBytes int64
	// MaxConnsPerIP bounds simultaneous connections from one IP address;
	// a connection over it gets "* BYE" as its greeting. Connections
	// without an IP (unix sockets) are not limited. Default
	// DefaultIMAPMaxConnsPerIP.
	MaxConnsPerIP int
	// MaxConns bounds simultaneous connections from all clients together,
	// unix-socket peers included; over it a connection gets "* BYE" at
	// once. Default DefaultIMAPMaxConns.
	MaxConns int
	// MaxConnsPerUserIP bounds the logged-in sessions of one mailbox from
	// one address (an IPv6 client's /84, ClientKey) on this node; a LOGIN
	// over it gets NO [UNAVAILABLE]. Default DefaultIMAPMaxConnsPerUserIP.
	MaxConnsPerUserIP int

	// IdleTimeout is the autologout timer once logged in: a client silent
	// this long is disconnected. Default DefaultIMAPIdleTimeout; at least
	// 30 minutes (RFC 9051 section 5.4).
	IdleTimeout time.Duration
	// PreAuthTimeout is the autologout timer before login. Default
	// DefaultIMAPPreAuthTimeout.
	PreAuthTimeout time.Duration
	// WriteTimeout bounds each write to the client (at most 32 KiB).
	// Default DefaultIMAPWriteTimeout.
	WriteTimeout time.Duration
	// CommandTimeout bounds each MailStore call. Default
	// DefaultIMAPCommandTimeout.
	CommandTimeout time.Duration
	// TransferTimeout bounds one APPEND, literal upload included, and the
	// body of one message in a FETCH. Default DefaultIMAPTransferTimeout.
	TransferTimeout time.Duration
	// PollInterval is how often IDLE re-reads the selected folder when no
	// change notification arrives. Default DefaultIMAPPollInterval.
	PollInterval time.Duration
	// AccountCheckInterval is how often, at most, a logged-in session
	// asks whether its mailbox has been disabled or removed, or its
	// password changed, since its login (imap_revoke.go): at a command's start, and at IDLE's polls.
	// Default DefaultAccountCheckInterval.
	AccountCheckInterval time.Duration
	// CacheBytes bounds the node-wide cache of body headers and
	// BODYSTRUCTUREs (imap_cache.go). Default DefaultIMAPCacheBytes.
	CacheBytes int64
	// MaxSearchKeys bounds the keys of one SEARCH (NOT and OR count as
	// keys too); over it the SEARCH gets NO [LIMIT] before any message
	// is matched. Default DefaultIMAPMaxSearchKeys.
	MaxSearchKeys int
	// MaxSearchTextKeys bounds the BODY and TEXT keys of one SEARCH,
	// each of which reads the messages it is matched against. Default
	// DefaultIMAPMaxSearchTextKeys.
	MaxSearchTextKeys int
	// MaxFetchSections bounds the body sections (BODY, BINARY and
	// BINARY.SIZE items) of one FETCH; over it the FETCH gets NO [LIMIT]
	// before any message is read. Default DefaultIMAPMaxFetchSections.
	MaxFetchSections int
}

// withDefaults returns cfg with zero fields filled in. A field out of
// range is replaced by the nearest valid value, and the returned error
// says which: NewIMAPServer logs it, and cmd can refuse it with Validate.
func (cfg IMAPConfig) withDefaults() (IMAPConfig, error) {
	setDefault(&cfg.MaxAppendBytes, DefaultIMAPMaxAppendBytes)
	setDefault(&cfg.MaxConnsPerIP, DefaultIMAPMaxConnsPerIP)
	setDefault(&cfg.MaxConns, DefaultIMAPMaxConns)
	setDefault(&cfg.MaxConnsPerUserIP, DefaultIMAPMaxConnsPerUserIP)
	setDefault(&cfg.IdleTimeout, DefaultIMAPIdleTimeout)
	setDefault(&cfg.PreAuthTimeout, DefaultIMAPPreAuthTimeout)
	setDefault(&cfg.WriteTimeout, DefaultIMAPWriteTimeout)
	setDefault(&cfg.CommandTimeout, DefaultIMAPCommandTimeout)
	setDefault(&cfg.TransferTimeout, DefaultIMAPTransferTimeout)
	setDefault(&cfg.PollInterval, DefaultIMAPPollInterval)
	setDefault(&cfg.AccountCheckInterval, DefaultAccountCheckInterval)
	setDefault(&cfg.CacheBytes, DefaultIMAPCacheBytes)
	setDefault(&cfg.MaxSearchKeys, DefaultIMAPMaxSearchKeys)
	setDefault(&cfg.MaxSearchTextKeys, DefaultIMAPMaxSearchTextKeys)
	setDefault(&cfg.MaxFetchSections, DefaultIMAPMaxFetchSections)

	var errs []error
	clamp := func(bad bool, fix func(), format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf(format, args...))
			fix()
		}
	}
	clamp(cfg.MaxAppendBytes < 0 || cfg.MaxAppendBytes > imapMaxAppendBytes, func() {
		cfg.MaxAppendBytes = min(max(cfg.MaxAppendBytes, DefaultIMAPMaxAppendBytes), imapMaxAppendBytes)
	}, "MaxAppendBytes %d is outside 1..%d", cfg.MaxAppendBytes, int64(imapMaxAppendBytes))
	clamp(cfg.MaxConnsPerIP < 0, func() { cfg.MaxConnsPerIP = DefaultIMAPMaxConnsPerIP },
		"MaxConnsPerIP %d must be positive", cfg.MaxConnsPerIP)
	clamp(cfg.MaxConns < 0, func() { cfg.MaxConns = DefaultIMAPMaxConns },
		"MaxConns %d must be positive", cfg.MaxConns)
	clamp(cfg.MaxConnsPerUserIP < 0, func() { cfg.MaxConnsPerUserIP = DefaultIMAPMaxConnsPerUserIP },
		"MaxConnsPerUserIP %d must be positive", cfg.MaxConnsPerUserIP)
	clamp(cfg.CacheBytes < 0, func() { cfg.CacheBytes = DefaultIMAPCacheBytes },
		"CacheBytes %d must be positive", cfg.CacheBytes)
	clamp(cfg.MaxSearchKeys < 0, func() { cfg.MaxSearchKeys = DefaultIMAPMaxSearchKeys },
		"MaxSearchKeys %d must be positive", cfg.MaxSearchKeys)
	clamp(cfg.MaxSearchTextKeys < 0, func() { cfg.MaxSearchTextKeys = DefaultIMAPMaxSearchTextKeys },
		"MaxSearchTextKeys %d must be positive", cfg.MaxSearchTextKeys)
	clamp(cfg.MaxFetchSections < 0, func() { cfg.MaxFetchSections = DefaultIMAPMaxFetchSections },
		"MaxFetchSections %d must be positive", cfg.MaxFetchSections)
	clamp(cfg.IdleTimeout < imapMinIdleTimeout, func() { cfg.IdleTimeout = imapMinIdleTimeout },
		"IdleTimeout %v is below the RFC 9051 minimum %v", cfg.IdleTimeout, imapMinIdleTimeout)
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"PreAuthTimeout", &cfg.PreAuthTimeout, DefaultIMAPPreAuthTimeout},
		{"CommandTimeout", &cfg.CommandTimeout, DefaultIMAPCommandTimeout},
		{"TransferTimeout", &cfg.TransferTimeout, DefaultIMAPTransferTimeout},
		{"PollInterval", &cfg.PollInterval, DefaultIMAPPollInterval},
		{"AccountCheckInterval", &cfg.AccountCheckInterval, DefaultAccountCheckInterval},
	} {
		clamp(*d.v < 0, func() { *d.v = d.def }, "%s %v must be positive", d.name, *d.v)
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("frontend: invalid IMAPConfig: %w", err)
	}
	return cfg, nil
}

// Validate reports the fields of cfg that are out of range (NewIMAPServer
// would replace them and log a warning).
func (cfg IMAPConfig) Validate() error {
	_, err := cfg.withDefaults()
	return err
}

// imapCaps is what the server advertises (RFC 9051 and the extensions
// below). go-imap adds SASL-IR, LITERAL-, ENABLE, IDLE, UNSELECT,
// UTF8=ACCEPT and STARTTLS/LOGINDISABLED/AUTH=PLAIN by itself, and
// APPENDLIMIT=n because the session implements SessionAppendLimit; ID
// (RFC 2971) is added below the library, by imapConn.
//
// QUOTA and QUOTA=RES-STORAGE (RFC 9208) are added below the library too
// (imap_quota.go). Not offered: CONDSTORE and QRESYNC, which the library
// does not implement server-side.
func imapCaps() imap.CapSet {
	return imap.CapSet{
		imap.CapIMAP4rev1:        {},
		imap.CapIMAP4rev2:        {},
		imap.CapNamespace:        {}, // RFC 2342
		imap.CapUIDPlus:          {}, // RFC 4315: APPENDUID, COPYUID, UID EXPUNGE
		imap.CapESearch:          {}, // RFC 4731
		imap.CapSearchRes:        {}, // RFC 5182: SEARCH RETURN (SAVE), "$"
		imap.CapListExtended:     {}, // RFC 5258
		imap.CapListStatus:       {}, // RFC 5819
		imap.CapMove:             {}, // RFC 6851
		imap.CapStatusSize:       {}, // RFC 8438
		imap.CapBinary:           {}, // RFC 3516
		imap.CapChildren:         {}, // RFC 3348
		imap.CapSpecialUse:       {}, // RFC 6154
		imap.CapCreateSpecialUse: {}, // RFC 6154 section 3
		imap.CapLiteralPlus:      {}, // RFC 7888
	}
}

// IMAPServer serves IMAP4rev2 and IMAP4rev1 on top of a MailStore. Every
// node runs one; a client may connect to any of them.
type IMAPServer struct {
	store MailStore
	auth  *Authenticator
	cfg   IMAPConfig
	log   *slog.Logger
	srv   *imapserver.Server // plaintext connections
	// tlsSrv serves connections under TLS (implicit, or handed on by
	// STARTTLS through handoff); nil without a TLS configuration.
	tlsSrv  *imapserver.Server
	handoff *imapHandoff
	// handedOn is closed when tlsSrv has stopped serving handoff.
	handedOn chan struct{}

	// ctx is the parent of every session's context; Close cancels it,
	// aborting backend calls in progress.
	ctx    context.Context
	cancel context.CancelFunc

	closed    atomic.Bool
	draining  atomic.Bool // Shutdown has begun (imap_drain.go); set under mu
	closeOnce sync.Once
	closeErr  error

	meta *imapMetaCache // headers and BODYSTRUCTUREs by body hash

	mu        sync.Mutex
	perIP     map[string]int // admitted sessions per remote IP
	waiting   map[string]int // over-limit connections waiting for a slot
	listeners map[net.Listener]struct{}
	conns     map[*imapConn]struct{} // sessions' connections, for Shutdown
	lingering map[*imapConn]struct{} // connections in a lingering close, for Close
	userIP    map[string]int         // logged-in sessions by mailbox and client key

	counts connCounts     // for metrics
	cmds   *commandCounts // counted on the wire (imap_conn.go)
	open   atomic.Int64   // sessions admitted and not yet closed
}

// NewIMAPServer returns a server over store that logs in through auth
// (shared with SMTP and POP3; nil means a default one over store). It does
// not listen; call Serve or ServeTLS. Out-of-range limits in cfg are
// replaced by valid ones and logged (see IMAPConfig.Validate).
func NewIMAPServer(store MailStore, auth *Authenticator, cfg IMAPConfig, log *slog.Logger) *IMAPServer {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("proto", "imap")
	if auth == nil { // the safe default: no plaintext passwords without TLS
		auth = NewAuthenticator(store, AuthConfig{}, log)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		log.Warn("imap: configuration adjusted", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &IMAPServer{
		store:     store,
		auth:      auth,
		cfg:       cfg,
		log:       log,
		ctx:       ctx,
		cancel:    cancel,
		perIP:     make(map[string]int),
		waiting:   make(map[string]int),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*imapConn]struct{}),
		lingering: make(map[*imapConn]struct{}),
		userIP:    make(map[string]int),
		meta:      newIMAPMetaCache(cfg.CacheBytes),
		cmds:      newIMAPCommands(),
	}
	opts := imapserver.Options{
		NewSession: s.newSession,
		Caps:       imapCaps(),
		Logger:     imapLogger{log},
		// The library refuses LOGIN and AUTHENTICATE without TLS (NO
		// [PRIVACYREQUIRED], LOGINDISABLED) unless this is set; the
		// Authenticator applies the same rule again.
		InsecureAuth: auth.AllowInsecure(),
	}
	if cfg.TLS != nil {
		// Makes the library advertise STARTTLS; imapConn performs it.
		opts.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return nil, errLibrarySTARTTLS
		}}
	}
	s.srv = imapserver.New(&opts)
	if cfg.TLS != nil {
		// The library knows TLS only as a *tls.Conn, which imapConn hides:
		// connections under TLS get an instance of their own.
		secure := opts
		secure.TLSConfig, secure.InsecureAuth = nil, true
		s.tlsSrv = imapserver.New(&secure)
		s.handoff = newIMAPHandoff()
		s.handedOn = make(chan struct{})
		go func() {
			defer close(s.handedOn)
			s.tlsSrv.Serve(s.handoff)
		}()
	}
	return s
}

// Serve accepts plaintext connections (STARTTLS available when cfg.TLS is
// set) on ln until Close, then returns ErrServerClosed. ln must be a plain
// listener: give implicit-TLS ones to ServeTLS.
func (s *IMAPServer) Serve(ln net.Listener) error {
	return s.serve(s.srv, &imapListener{Listener: ln, srv: s}, ln.Addr())
}

// ServeTLS accepts implicit-TLS connections (RFC 8314, port 993) on the
// plain listener ln, with cfg.TLS.
func (s *IMAPServer) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		ln.Close()
		return errors.New("frontend: imap ServeTLS: IMAPConfig.TLS is nil")
	}
	return s.serve(s.tlsSrv, &imapListener{Listener: ln, srv: s, tls: true}, ln.Addr())
}

func (s *IMAPServer) serve(srv *imapserver.Server, ln net.Listener, addr net.Addr) error {
	if !s.trackListener(ln, true) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.trackListener(ln, false)
	s.log.Info("imap: serving", "addr", addr)
	err := srv.Serve(ln)
	if s.stopping() {
		return ErrServerClosed
	}
	if err == nil { // the library hides net.ErrClosed: someone closed ln
		err = net.ErrClosed
	}
	return fmt.Errorf("frontend: imap serve %v: %w", addr, err)
}

// Close closes every listener and connection at once and cancels the
// backend calls in progress. A command cut off this way was not
// acknowledged (an APPEND without its OK is retried by the client).
func (s *IMAPServer) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancelLingering()
		s.cancel()
		if s.handoff != nil {
			// imapserver's Serve joins the server's WaitGroup only after
			// it has registered its listener, and the server's Close
			// waits on that group: a Serve still running then is an Add
			// racing the Wait (the race detector reports it). handoff is
			// never closed by Shutdown, so its Serve must end first.
			s.handoff.Close()
			<-s.handedOn
		}
		for _, srv := range []*imapserver.Server{s.srv, s.tlsSrv} {
			if srv == nil {
				continue
			}
			if err := srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) && s.closeErr == nil {
				s.closeErr = fmt.Errorf("frontend: imap close: %w", err)
			}
		}
		s.waitSessions(closeWait)
	})
	return s.closeErr
}

// closeWait bounds how long Close waits for sessions to end.
const closeWait = 10 * time.Second

// waitSessions waits, up to d, until every session has ended. go-imap's
// Close closes the connections but does not wait for their goroutines,
// and a session still reading from the store when the node closes it
// would fail there; their backend calls are cancelled already, so they
// end promptly.
func (s *IMAPServer) waitSessions(d time.Duration) {
	deadline := time.Now().Add(d)
	for s.open.Load() > 0 {
		if time.Now().After(deadline) {
			s.log.Warn("imap: sessions still open after close", "open", s.open.Load(), "waited", d)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// admit takes a connection slot for ip, waiting up to reconnectGrace for
// one when the IP is at its limit (a client that reconnects right after
// LOGOUT can arrive before its old connection is torn down). It runs on
// the connection's own goroutine, so waiting never delays other clients.
// ip "" (no IP address) has no per-IP limit. Over MaxConns it refuses at
// once.
func (s *IMAPServer) admit(ip string) refusal {
	if !s.reserve() {
		s.counts.refused.Add(1)
		return overTotal
	}
	if !s.admitIP(ip) {
		s.open.Add(-1)
		s.counts.refused.Add(1)
		return overPerIP
	}
	s.counts.admitted.Add(1)
	return admitted
}

// reserve takes one of MaxConns slots, or reports that none is free.
func (s *IMAPServer) reserve() bool {
	for {
		n := s.open.Load()
		if n >= int64(s.cfg.MaxConns) {
			return false
		}
		if s.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (s *IMAPServer) admitIP(ip string) bool {
	if ip == "" {
		return true
	}
	s.mu.Lock()
	if s.perIP[ip] < s.cfg.MaxConnsPerIP {
		s.perIP[ip]++
		s.mu.Unlock()
		return true
	}
	if s.waiting[ip] >= s.cfg.MaxConnsPerIP { // a flood: refuse at once
		s.mu.Unlock()
		return false
	}
	s.waiting[ip]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.waiting[ip]--; s.waiting[ip] <= 0 {
			delete(s.waiting, ip)
		}
		s.mu.Unlock()
	}()
	for deadline := time.Now().Add(reconnectGrace); time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		s.mu.Lock()
		if s.perIP[ip] < s.cfg.MaxConnsPerIP {
			s.perIP[ip]++
			s.mu.Unlock()
			return true
		}
		s.mu.Unlock()
	}
	return false
}

func (s *IMAPServer) release(ip string) {
	s.open.Add(-1)
	if ip == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// takeUserIP takes a logged-in session's slot under key (mailbox and
// client key), unless MaxConnsPerUserIP are taken.
func (s *IMAPServer) takeUserIP(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userIP[key] >= s.cfg.MaxConnsPerUserIP {
		return false
	}
	s.userIP[key]++
	return true
}

// releaseUserIP gives back a slot takeUserIP took.
func (s *IMAPServer) releaseUserIP(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userIP[key]--; s.userIP[key] <= 0 {
		delete(s.userIP, key)
	}
}

// RegisterMetrics adds the server's connection and command counts to
// reg, labelled proto="imap". It fails if reg holds them already.
func (s *IMAPServer) RegisterMetrics(reg prometheus.Registerer) error {
	return register(reg, "imap", append(s.counts.collectors(func() int { return int(s.open.Load()) }), s.cmds.vec))
}

// newSession is imapserver's NewSession: it runs on the connection's
// goroutine before the greeting. An error of type BYE is sent as the
// greeting.
func (s *IMAPServer) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	nc := c.NetConn()
	remote := nc.RemoteAddr()
	ip := ipKey(remote)
	raw := rawIMAPConn(nc)
	// A session that STARTTLS hands on during a drain is one the client
	// already had: it starts, to be ended by the drain at its first
	// command with a BYE the client reads (a refusal here would be the
	// greeting, which is swallowed after STARTTLS).
	if s.closed.Load() || s.draining.Load() && (raw == nil || !raw.inherited) {
		if raw != nil && raw.inherited {
			s.release(ip) // the slot moved here with STARTTLS; no session will free it
		}
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Code: imap.ResponseCodeUnavailable, Text: "Server shutting down, please reconnect"}
	}
	why := admitted
	if raw == nil || !raw.inherited { // after STARTTLS the slot is the plaintext session's
		why = s.admit(ip)
	}
	switch why {
	case overPerIP:
		s.log.Debug("imap: connection refused, per-IP limit", "remote", remote, "limit", s.cfg.MaxConnsPerIP)
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Code: imap.ResponseCodeUnavailable,
			Text: "Too many connections from your address, try again later"}
	case overTotal:
		s.log.Debug("imap: connection refused, server limit", "remote", remote, "limit", s.cfg.MaxConns)
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Code: imap.ResponseCodeUnavailable,
			Text: "Too many connections, try again later"}
	}
	s.trackConn(raw, true)
	ctx, cancel := context.WithCancel(s.ctx)
	sess := &imapSession{
		srv:    s,
		conn:   c,
		raw:    raw,
		ip:     ip,
		peer:   peerIP(remote),
		ctx:    ctx,
		cancel: cancel,
		log:    s.log.With("remote", fmt.Sprint(remote)),
	}
	if raw != nil {
		raw.sess = sess // newSession runs on the goroutine that reads
	}
	return imapCommands{sess}, nil, nil
}

// imapLogger adapts slog to imapserver.Logger, which reports connection
// errors, recovered panics and non-IMAP errors returned by the session.
type imapLogger struct{ l *slog.Logger }

func (p imapLogger) Printf(format string, v ...any) {
	msg := strings.TrimSuffix(fmt.Sprintf(format, v...), "\n")
	switch {
	case strings.HasPrefix(msg, "panic"):
		p.l.Error("imap: " + msg)
	case strings.HasPrefix(msg, "failed to read command"), strings.HasPrefix(msg, "failed to write greeting"):
		// Timeouts and dropped connections: routine.
		p.l.Debug("imap: " + msg)
	case imapClientInputError(msg):
		// The client's arguments, refused by the library's parser and
		// answered as the client's error (imap_quirks.go).
		p.l.Debug("imap: client error: " + msg)
	default:
		p.l.Warn("imap: " + msg)
	}
}
