package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// POP3Server serves POP3 (RFC 1939) with CAPA and response codes (RFC
// 2449), STLS (RFC 2595), AUTH PLAIN (RFC 5034) and implicit TLS
// (ServeTLS, RFC 8314). The maildrop of a mailbox is its INBOX folder.
//
// Invariants:
//   - Deletions are committed only by QUIT in the TRANSACTION state; a
//     connection that drops or times out commits nothing (RFC 1939 §6).
//   - Message numbers and sizes come from one snapshot taken after the
//     cluster-wide maildrop lock was granted, and do not change for the
//     session.
//   - The lock is released on every way out of a session: QUIT, a lost
//     connection, a timeout, server Close.
//   - Bodies are streamed; a session holds at most one line and one read
//     buffer in memory.
//   - Every MailStore call gets a deadline; Close cancels them all.
//   - A connection that has not logged in within PreAuthTimeout of
//     connecting is closed, however busy it keeps itself: the idle timer
//     alone would let a CAPA every few minutes hold a slot for ever.
type POP3Server struct {
	store   MailStore
	auth    *Authenticator
	cfg     POP3Config
	log     *slog.Logger
	tracker *connTracker
	cmds    *commandCounts

	// ctx is the parent of every session's context; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    atomic.Bool // set under mu, read anywhere
	listeners map[net.Listener]struct{}
	sessions  sync.WaitGroup // Add only under mu while !closed
}

// NewPOP3Server returns a server that reads maildrops from store and
// checks passwords with auth. Zero fields of cfg take their defaults; a
// nil log means slog.Default(). It does not listen; call Serve or
// ServeTLS.
func NewPOP3Server(store MailStore, auth *Authenticator, cfg POP3Config, log *slog.Logger) *POP3Server {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	log = log.With("proto", "pop3")
	ctx, cancel := context.WithCancel(context.Background())
	return &POP3Server{
		store: store,
		auth:  auth,
		cfg:   cfg,
		log:   log,
		// The tracker enforces the per-IP limit and restarts the idle
		// read deadline before every read (the session's PreAuthTimeout,
		// a total, ends reads through it too). Its refusal text is
		// SMTP's, so this server refuses over-limit connections itself.
		tracker: newConnTracker(SMTPConfig{
			Hostname:      cfg.Hostname,
			MaxConnsPerIP: cfg.MaxConnsPerIP,
			MaxConns:      cfg.MaxConns,
			ReadTimeout:   cfg.IdleTimeout,
			Logger:        log,
		}),
		cmds:      newPOP3Commands(),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
	}
}

// RegisterMetrics adds the server's connection and command counts to
// reg, labelled proto="pop3". It fails if reg holds them already.
func (s *POP3Server) RegisterMetrics(reg prometheus.Registerer) error {
	return register(reg, "pop3", append(s.tracker.collectors(), s.cmds.vec))
}

// Serve accepts plain POP3 connections (port 110; STLS upgrades them if
// TLS is configured) on ln until Close, then returns ErrServerClosed. It
// closes ln when it returns. Several listeners may share one server and
// its per-IP limit.
func (s *POP3Server) Serve(ln net.Listener) error { return s.serve(ln, false) }

// ServeTLS accepts POP3S connections (port 995, implicit TLS, RFC 8314
// §3.3): every connection starts with a TLS handshake using
// POP3Config.TLS. ln must be a plain listener, not a tls.NewListener one.
func (s *POP3Server) ServeTLS(ln net.Listener) error {
	if s.cfg.TLS == nil {
		ln.Close()
		return errors.New("frontend: pop3: ServeTLS needs POP3Config.TLS")
	}
	return s.serve(ln, true)
}

func (s *POP3Server) serve(ln net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	s.log.Info("pop3: serving", "addr", ln.Addr(), "tls", implicitTLS)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closed.Load() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() { // EMFILE, ECONNABORTED, ...
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("pop3: accept", "err", err, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("frontend: pop3 serve %v: %w", ln.Addr(), err)
		}
		backoff = 0
		s.admit(c, implicitTLS)
	}
}

// admit starts a session for c, or lets it wait for a slot when its IP is
// at the limit (as limitListener does for SMTP: a client that reconnects
// right after QUIT may arrive before its old connection is torn down).
// Over the server's own limit it is refused at once.
func (s *POP3Server) admit(c net.Conn, implicitTLS bool) {
	tc, why := s.tracker.admit(c)
	if why == admitted {
		s.start(tc, implicitTLS)
		return
	}
	if why == overTotal || !s.tracker.startWaiting(c) {
		s.refuse(c, implicitTLS, why)
		return
	}
	go func() {
		defer s.tracker.stopWaiting(c)
		deadline := time.Now().Add(reconnectGrace)
		for time.Now().Before(deadline) && !s.closed.Load() {
			time.Sleep(10 * time.Millisecond)
			if tc, why = s.tracker.admit(c); why == admitted {
				s.start(tc, implicitTLS)
				return
			}
		}
		s.refuse(c, implicitTLS, why)
	}()
}

// refuse answers a connection over a limit and closes it. On a POP3S
// port the client expects a TLS handshake, so it is only closed. A fresh
// socket's send buffer is empty: the write does not block.
func (s *POP3Server) refuse(c net.Conn, implicitTLS bool, why refusal) {
	s.tracker.counts.refused.Add(1)
	text, limit := "-ERR [SYS/TEMP] too many connections from your address, try again later\r\n", s.cfg.MaxConnsPerIP
	if why == overTotal {
		text, limit = "-ERR [SYS/TEMP] too many connections, try again later\r\n", s.cfg.MaxConns
	}
	if !implicitTLS {
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Write([]byte(text))
	}
	_ = c.Close()
	s.log.Debug("pop3: connection refused", "remote", c.RemoteAddr(), "over_total", why == overTotal, "limit", limit)
}

// start runs a session for tc in its own goroutine, unless the server is
// closed.
func (s *POP3Server) start(tc *trackedConn, implicitTLS bool) {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		tc.Close()
		return
	}
	s.sessions.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.sessions.Done()
		s.handle(tc, implicitTLS)
	}()
}

// Close stops every listener, cancels backend calls in progress, closes
// every connection and waits for the sessions to release their maildrop
// locks (each release is bounded by BackendTimeout). Deletions of
// sessions cut off this way are not committed.
func (s *POP3Server) Close() error {
	err := s.stopAccepting()
	s.cancel()
	s.tracker.closeAll()
	s.sessions.Wait()
	return err
}

// Shutdown stops accepting and lets every logged-in session run until
// its client sends QUIT, so that its deletions are committed (the UPDATE
// state, RFC 1939 §6). A session not logged in is closed at once, without
// a reply: POP3 has no message a server may send unasked. When ctx ends
// first, what is left is closed as Close does, and ctx's error returned.
func (s *POP3Server) Shutdown(ctx context.Context) error {
	err := s.stopAccepting()
	s.tracker.expireIdle()
	done := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		s.log.Info("pop3: sessions still open at the end of shutdown, closing them")
		return errors.Join(err, s.Close(), fmt.Errorf("frontend: pop3 shutdown: %w", ctx.Err()))
	}
}

// stopAccepting marks the server closed, so that no session starts, and
// closes its listeners.
func (s *POP3Server) stopAccepting() error {
	s.mu.Lock()
	s.closed.Store(true)
	var lns []net.Listener
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	s.mu.Unlock()
	return closeListenerList(lns, "pop3")
}

// closeListenerList closes lns and returns the first failure that is not
// an already closed listener.
func closeListenerList(lns []net.Listener, proto string) error {
	var err error
	for _, ln := range lns {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = fmt.Errorf("frontend: %s: closing listener: %w", proto, cerr)
		}
	}
	return err
}
