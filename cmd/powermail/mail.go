package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"powermail/frontend"
	"powermail/node"
)

// The node is what the frontend delivers through.
var _ frontend.Deliverer = (*node.Node)(nil)

type mailFlags struct {
	hostname               string
	postmaster             string
	tlsCert, tlsKey        string
	maxMessage             int64
	maxRecipients, maxConn int
	maxConns               int
	maxLine                int
	readTimeout            time.Duration
	writeTimeout           time.Duration
	maxRejectedRcpts       int
	rejectedRcptDelay      time.Duration
	maxSessionTime         time.Duration
	refusedNoticeTimeout   time.Duration
	sendAsAliases          bool
}

func (m *mailFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&m.hostname, "hostname", "", "name in SMTP greetings and Received: headers (default: the host name)")
	fl.StringVar(&m.postmaster, "postmaster", "", "mailbox or forward address that RCPT TO:<postmaster>, without a domain, reaches (default: postmaster@ the --hostname, if that is an address)")
	fl.StringVar(&m.tlsCert, "tls-cert", "", "PEM certificate for STARTTLS and implicit TLS (SIGHUP reads it and the key again)")
	fl.StringVar(&m.tlsKey, "tls-key", "", "PEM private key for STARTTLS")
	fl.Int64Var(&m.maxMessage, "max-message-size", frontend.DefaultMaxMessageBytes, "largest accepted message in bytes")
	fl.IntVar(&m.maxRecipients, "max-recipients", frontend.DefaultMaxRecipients, "recipients per message")
	fl.IntVar(&m.maxConn, "max-conns-per-ip", frontend.DefaultMaxConnsPerIP, "simultaneous connections per client IP to each protocol's server: SMTP, LMTP, submission, IMAP, POP3")
	fl.IntVar(&m.maxConns, "max-conns", frontend.DefaultMaxConns, "simultaneous connections from all clients to the SMTP, the LMTP and the POP3 server, each (over it: 421 4.3.2; POP3: -ERR [SYS/TEMP])")
	fl.IntVar(&m.maxLine, "max-line-length", frontend.DefaultMaxLineLength, "longest command or message line in bytes")
	fl.DurationVar(&m.readTimeout, "smtp-read-timeout", frontend.DefaultReadTimeout, "idle time before an SMTP/LMTP client is dropped")
	fl.DurationVar(&m.writeTimeout, "smtp-write-timeout", frontend.DefaultWriteTimeout, "time to write one reply")
	fl.IntVar(&m.maxRejectedRcpts, "smtp-max-rejected-rcpts", frontend.DefaultMaxRejectedRcpts, "recipients an SMTP/submission connection may have refused before its next RCPT gets 421 4.7.0 and it is closed (not LMTP)")
	fl.DurationVar(&m.rejectedRcptDelay, "smtp-rejected-rcpt-delay", frontend.DefaultRejectedRcptDelay, "each refused recipient after a connection's fifth waits this much longer than the one before, up to 15 times it (not LMTP)")
	fl.DurationVar(&m.maxSessionTime, "smtp-max-session-time", frontend.DefaultMaxSessionTime, "longest SMTP/LMTP connection; a transaction under way may finish")
	fl.DurationVar(&m.refusedNoticeTimeout, "smtp-refused-notice-timeout", node.DefaultRefusedNoticeTimeout, "when a delivery's commit refuses a mailbox (deleted or being removed since RCPT) while another takes the message, the 250 waits up to this long for the failure notice to the sender to be stored; past it the notice is logged and dropped and the 250 stands, since a 4xx would have the client send the message again to the others (0: 30s; 1s to 5m)")
	fl.BoolVar(&m.sendAsAliases, "submission-send-as-aliases", true, "a submission user may send (envelope, From:, Sender:) as an address whose forward names its mailbox directly, and its +detail; never a catch-all's")
}

func (m *mailFlags) config(log *slog.Logger, kind string, tlsCfg *tls.Config, auth *frontend.Authenticator) frontend.SMTPConfig {
	cfg := frontend.SMTPConfig{
		Hostname: m.hostname, Postmaster: m.postmaster, MaxMessageBytes: m.maxMessage, MaxRecipients: m.maxRecipients,
		MaxLineLength: m.maxLine, MaxConnsPerIP: m.maxConn, MaxConns: m.maxConns, ReadTimeout: m.readTimeout,
		WriteTimeout: m.writeTimeout, Logger: log, LMTP: kind == "lmtp", TLS: tlsCfg,
		MaxSessionTime: m.maxSessionTime,
	}
	if kind != "lmtp" { // LMTP: no refusal limit; the MTA in front has its own
		cfg.MaxRejectedRcpts, cfg.RejectedRcptDelay = m.maxRejectedRcpts, m.rejectedRcptDelay
	}
	if kind == "submission" {
		cfg.Submission, cfg.Auth, cfg.NoSendAsAliases = true, auth, !m.sendAsAliases
	}
	return cfg
}

// tlsFiles loads --tls-cert/--tls-key, which SIGHUP reads again; nil
// without them.
func (m *mailFlags) tlsFiles() (*node.TLSFiles, error) {
	if m.tlsCert == "" && m.tlsKey == "" {
		return nil, nil
	}
	f, err := node.LoadTLSFiles(m.tlsCert, m.tlsKey, "")
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return f, nil
}

// listenSMTP listens for SMTP or LMTP without TCP keepalive. A session
// lives seconds and every read has a deadline (--smtp-read-timeout), which
// finds a vanished client sooner than keepalive probes would; and Go's
// default keepalive costs four setsockopt calls on every accepted
// connection, which at one connection per message (smtp-source, most
// MTAs) is measurable.
func listenSMTP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(context.Background(), "tcp", addr)
}

// clientPortsFree fails when a client protocol's address cannot be bound,
// before the node starts: the node may join its cluster as it starts,
// and a member that then stops on a taken port is a dead voter.
func (f *serverFlags) clientPortsFree() error {
	for _, addr := range []string{f.smtp, f.lmtp, f.submission, f.submissions, f.imap, f.access.imaps, f.pop3, f.access.pop3s} {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("client listener: %w", err)
		}
		ln.Close()
	}
	return nil
}

// stopped is an ended context: a stop on a failed start closes at once
// instead of draining (a client may already hold a session).
func stopped() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// startMail starts the SMTP, LMTP, IMAP and POP3 listeners that have an
// address, with tlsFiles (nil: none) for STARTTLS and implicit TLS, and
// returns a function that stops them.
func startMail(f *serverFlags, n *node.Node, tlsFiles *node.TLSFiles, log *slog.Logger) (func(context.Context), error) {
	var tlsCfg *tls.Config
	if tlsFiles != nil {
		tlsCfg = tlsFiles.ServerConfig()
	}
	auth := newAuthenticator(f, n, log)
	if err := auth.RegisterMetrics(n.Metrics()); err != nil {
		return nil, err
	}
	var servers []*frontend.SMTPServer
	stop := func(ctx context.Context) {
		for _, s := range servers {
			s.Shutdown(ctx)
		}
	}
	byKind := map[string]*frontend.SMTPServer{} // one server (and one set of metrics) per kind
	for _, l := range []struct {
		addr, kind string
		implicit   bool
	}{{f.smtp, "smtp", false}, {f.lmtp, "lmtp", false}, {f.submission, "submission", false}, {f.submissions, "submission", true}} {
		if l.addr == "" {
			continue
		}
		s := byKind[l.kind]
		var err error
		if s == nil {
			if s, err = frontend.NewSMTPServer(f.mail.config(log, l.kind, tlsCfg, auth), n); err == nil {
				err = s.RegisterMetrics(n.Metrics())
			}
			if err == nil {
				byKind[l.kind] = s
				servers = append(servers, s)
			}
		}
		var ln net.Listener
		if err == nil {
			ln, err = listenSMTP(l.addr)
		}
		if err != nil {
			stop(stopped())
			return nil, err
		}
		serve := s.Serve
		if l.implicit {
			serve = s.ServeTLS
		}
		go serve(ln)
		log.Info("listening", "protocol", l.kind, "implicit_tls", l.implicit, "addr", ln.Addr().String())
	}
	stopAccess, err := startAccess(f, n, auth, tlsCfg, log)
	if err != nil {
		stop(stopped())
		return nil, err
	}
	return func(ctx context.Context) { // every protocol drains at once
		var wg sync.WaitGroup
		wg.Go(func() { stopAccess(ctx) })
		wg.Go(func() { stop(ctx) })
		wg.Wait()
	}, nil
}
