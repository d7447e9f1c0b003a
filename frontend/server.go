package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
)

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("frontend: server closed")

// SMTPServer is an SMTP (or LMTP) server that delivers into the cluster
// through a Deliverer.
type SMTPServer struct {
	cfg     SMTPConfig
	d       Deliverer
	log     *slog.Logger
	srv     *smtp.Server
	tracker *connTracker
	metrics *smtpMetrics

	// ctx is the parent of every session's context. Close cancels it,
	// aborting backend calls; Shutdown lets them finish.
	ctx    context.Context
	cancel context.CancelFunc

	draining atomic.Bool // Shutdown or Close has begun

	mu        sync.Mutex
	listeners []net.Listener
}

// NewSMTPServer validates cfg, fills in defaults and returns a server that
// delivers through d. It does not listen; call Serve.
func NewSMTPServer(cfg SMTPConfig, d Deliverer) (*SMTPServer, error) {
	if d == nil {
		return nil, errors.New("frontend: NewSMTPServer: nil Deliverer")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &SMTPServer{
		cfg:     cfg,
		d:       d,
		log:     cfg.Logger.With("proto", protoName(cfg)),
		tracker: newConnTracker(cfg),
		metrics: newSMTPMetrics(),
		ctx:     ctx,
		cancel:  cancel,
	}
	s.tracker.smtpReplies = true
	s.tracker.drainReply = wireLine(replyShuttingDown())
	s.srv = s.newSMTPServer()
	return s, nil
}

// RegisterMetrics adds the server's counters to reg, labelled
// proto="smtp" or "lmtp": replies by command, code and enhanced status,
// DATA latency, received octets and connections. It fails if reg holds
// them already.
func (s *SMTPServer) RegisterMetrics(reg prometheus.Registerer) error {
	return register(reg, protoName(s.cfg), s.metrics.collectors(s.tracker))
}

// goSMTPLineSlack is what go-smtp's line limit is raised by: its read
// buffer's size, the most of a BDAT chunk it can count as a line.
const goSMTPLineSlack = 4096

// newSMTPServer configures go-smtp. Each extension noted is advertised in
// the EHLO/LHLO reply.
func (s *SMTPServer) newSMTPServer() *smtp.Server {
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	// Always on in go-smtp: PIPELINING (RFC 2920), 8BITMIME (RFC 6152),
	// ENHANCEDSTATUSCODES (RFC 2034), CHUNKING (RFC 3030).
	srv.Domain = s.cfg.Hostname
	srv.LMTP = s.cfg.LMTP
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes // SIZE n (RFC 1870), DATA and BDAT limits
	srv.MaxRecipients = s.cfg.MaxRecipients     // also LIMITS RCPTMAX (RFC 9422)
	// go-smtp counts line octets below its 4 KiB read buffer and does not
	// count while it reads a BDAT chunk, so the octets of a chunk that
	// came in one buffer fill with the BDAT command are counted as the
	// start of the next command line (up to 4 KiB of them). With the
	// limit exact, a large chunk without line ends would cut the
	// connection at the next BDAT. DATA lines are held to the exact
	// limit by bodyReader; a command line may run goSMTPLineSlack over,
	// and right after a chunk up to one read buffer more: the fill that
	// takes a chunk's last octets may take the next line's first ones,
	// uncounted. Either way a command line stays within a few KiB.
	srv.MaxLineLength = s.cfg.MaxLineLength + goSMTPLineSlack
	srv.TLSConfig = s.cfg.TLS // STARTTLS (RFC 3207) when non-nil
	// AUTH (RFC 4954) is offered on submission only, and without TLS only
	// for trials (--allow-insecure-auth).
	srv.AllowInsecureAuth = s.cfg.Submission && s.cfg.Auth.AllowInsecure()
	srv.EnableSMTPUTF8 = true // SMTPUTF8 (RFC 6531)
	srv.EnableDSN = true      // DSN (RFC 3461): RET, ENVID, NOTIFY, ORCPT accepted
	// Read deadlines are set per read by trackedConn (an idle timeout);
	// go-smtp's own would also cover DATA as one block.
	srv.ReadTimeout = 0
	srv.WriteTimeout = s.cfg.WriteTimeout
	srv.ErrorLog = slogPrinter{s.log}
	return srv
}

// Serve accepts connections on ln until Close or Shutdown, then returns
// ErrServerClosed. It closes ln when it returns. It may be called for
// several listeners; they share the per-IP limit.
func (s *SMTPServer) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS serves ln with implicit TLS (RFC 8314: submission on port
// 465): each connection is TLS from its first byte. The TLS layer sits
// above our connection tracking, so go-smtp sees the *tls.Conn (for AUTH
// and the trace's "with") and the limits still count every connection.
func (s *SMTPServer) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		return errors.New("frontend: ServeTLS without a TLS config")
	}
	return s.serve(ln, true)
}

func (s *SMTPServer) serve(ln net.Listener, implicitTLS bool) error {
	gateLine := 0
	if !implicitTLS {
		// Longer than any command line go-smtp accepts: its limit and
		// up to one read buffer uncounted after a chunk (Limits).
		gateLine = s.srv.MaxLineLength + goSMTPLineSlack
	}
	wrapped := newLimitListener(ln, s.tracker, implicitTLS, gateLine)
	defer wrapped.Close()

	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, wrapped)
	s.mu.Unlock()

	s.log.Info("smtp: serving", "addr", ln.Addr(), "implicit_tls", implicitTLS)
	var served net.Listener = wrapped
	if implicitTLS {
		served = tls.NewListener(wrapped, s.cfg.TLS)
	}
	err := s.srv.Serve(served)
	if s.draining.Load() {
		return ErrServerClosed
	}
	return fmt.Errorf("frontend: serve %v: %w", ln.Addr(), err)
}

// Close closes all listeners and connections at once and cancels backend
// calls in progress. A transaction cut off this way was not acknowledged,
// so its client retries.
func (s *SMTPServer) Close() error {
	s.beginDrain()
	s.cancel()
	s.tracker.cutLingering()
	err := s.srv.Close()
	if errors.Is(err, smtp.ErrServerClosed) { // after Shutdown: conns are ours to close
		err = nil
	}
	s.tracker.closeAll()
	return s.closeListeners(err)
}

// Shutdown stops accepting, lets transactions in progress finish, ends
// idle connections with 421, and waits for every connection to end. If
// ctx expires first it closes what is left, as Close does, and returns
// ctx's error.
func (s *SMTPServer) Shutdown(ctx context.Context) error {
	s.beginDrain()
	s.tracker.expireIdle()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		s.cancel()
		s.tracker.closeAll()
		err = fmt.Errorf("frontend: shutdown: %w", err)
	}
	return s.closeListeners(err)
}

func (s *SMTPServer) beginDrain() {
	s.mu.Lock()
	s.tracker.drained.Store(true)
	s.draining.Store(true)
	s.mu.Unlock()
}

// closeListeners closes listeners that go-smtp may not have registered
// yet (Serve racing Close), keeping the first real error.
func (s *SMTPServer) closeListeners(err error) error {
	s.mu.Lock()
	ls := s.listeners
	s.listeners = nil
	s.mu.Unlock()
	for _, l := range ls {
		if cerr := l.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = fmt.Errorf("frontend: closing listener: %w", cerr)
		}
	}
	return err
}

// newSession is go-smtp's Backend: it runs after the first EHLO/LHLO/HELO
// (and again after STARTTLS).
func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	growStack()
	ctx, cancel := context.WithCancel(s.ctx)
	remote := c.Conn().RemoteAddr() // may be nil for a unix socket peer
	tc := trackedOf(c.Conn())
	tc.sessionConn(c.Conn())
	return &session{
		srv:    s,
		conn:   c,
		tc:     tc,
		remote: remote,
		ctx:    ctx,
		cancel: cancel,
		log:    s.log.With("remote", fmt.Sprint(remote)),
	}, nil
}

func protoName(cfg SMTPConfig) string {
	switch {
	case cfg.LMTP:
		return "lmtp"
	case cfg.Submission:
		return "submission"
	}
	return "smtp"
}

// slogPrinter adapts slog to go-smtp's Logger, which reports connection
// errors and recovered panics. A connection's error (a reset, a reply the
// client did not stay for, an idle timeout, a failed TLS handshake) is
// the client's doing, and anyone can cause one per connection: it goes
// out at Debug, as a refused connection does, so that a client that
// connects and hangs up in a loop cannot fill the disk with the log. A
// panic is ours: Error. Anything else (a failed accept): Warn.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	msg := "smtp: " + fmt.Sprintf(format, v...)
	switch {
	case strings.HasPrefix(format, "error handling "):
		p.l.Debug(msg)
	case strings.HasPrefix(format, "panic "):
		p.l.Error(msg)
	default:
		p.l.Warn(msg)
	}
}

func (p slogPrinter) Println(v ...any) {
	p.l.Warn("smtp: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}
