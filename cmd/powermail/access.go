package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"powermail/frontend"
	"powermail/node"
	"powermail/storage"
)

// accessFlags configure IMAP, POP3 and the login path they share.
type accessFlags struct {
	imaps, pop3s      string
	allowInsecureAuth bool
	authDelay         time.Duration
	authMaxDelay      time.Duration
	imapIdle          time.Duration
	imapPreAuth       time.Duration
	imapWrite         time.Duration
	pop3Idle          time.Duration
	pop3PreAuth       time.Duration
	pop3KeepUnseen    bool
	maildropLease     time.Duration
	remoteReadMax     int64
	remoteCacheBytes  int64
	storageCacheBytes int64
	imapCacheBytes    int64
	imapMaxConns      int
	imapMaxUserIP     int
	imapSearchKeys    int
	imapSearchText    int
	imapFetchSections int
	passwordMemory    int64
	accountCheck      time.Duration
}

func (a *accessFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&a.imaps, "imaps", "", "IMAP over implicit TLS listen address (needs --tls-cert)")
	fl.StringVar(&a.pop3s, "pop3s", "", "POP3 over implicit TLS listen address (needs --tls-cert)")
	fl.BoolVar(&a.allowInsecureAuth, "allow-insecure-auth", false, "accept plaintext passwords without TLS (trials on loopback only)")
	fl.DurationVar(&a.authDelay, "auth-failure-delay", frontend.DefaultFailureDelay, "least time from a password check to its failure's answer, and the delay a failure earns the next login of its IP or account, doubled per further failure")
	fl.DurationVar(&a.authMaxDelay, "auth-max-delay", frontend.DefaultMaxDelay, "longest delay of a client that keeps failing to log in")
	fl.DurationVar(&a.imapIdle, "imap-idle-timeout", frontend.DefaultIMAPIdleTimeout, "IMAP autologout after login (at least 30m)")
	fl.DurationVar(&a.imapPreAuth, "imap-preauth-timeout", frontend.DefaultIMAPPreAuthTimeout, "close an IMAP client that has not logged in this long after connecting, however busy it keeps the connection")
	fl.DurationVar(&a.imapWrite, "imap-write-timeout", frontend.DefaultIMAPWriteTimeout, "disconnect an IMAP client that takes longer than this to accept one write (up to 32 KiB)")
	fl.DurationVar(&a.pop3Idle, "pop3-idle-timeout", frontend.DefaultPOP3IdleTimeout, "POP3 autologout (at least 10m)")
	fl.DurationVar(&a.pop3PreAuth, "pop3-preauth-timeout", frontend.DefaultPOP3PreAuthTimeout, "close a POP3 client that has not logged in this long after connecting, however busy it keeps the connection")
	fl.BoolVar(&a.pop3KeepUnseen, "pop3-keep-unseen", false, "leave messages a POP3 client downloads (RETR) and keeps unseen in IMAP; by default QUIT marks them \\Seen")
	fl.DurationVar(&a.maildropLease, "maildrop-lease", node.DefaultMaildropLease, "how long a dead node's POP3 maildrop lock lasts")
	fl.Int64Var(&a.remoteReadMax, "remote-read-max", node.DefaultRemoteReadMax, "largest body another node's replica is read into memory for a client (larger ones are copied to this node's store first; -1: always copy)")
	fl.Int64Var(&a.remoteCacheBytes, "remote-cache-bytes", node.DefaultRemoteCacheBytes, "memory for bodies read from other nodes' replicas")
	fl.Int64Var(&a.storageCacheBytes, "storage-cache-bytes", storage.DefaultCacheBytes, "block cache of the local body store")
	fl.Int64Var(&a.passwordMemory, "password-check-memory", node.DefaultPasswordMemory, "memory for password checks in flight (argon2id takes 19 MiB each); further logins wait")
	fl.IntVar(&a.imapMaxConns, "imap-max-conns", frontend.DefaultIMAPMaxConns, "simultaneous IMAP connections from all clients (over it: BYE [UNAVAILABLE])")
	fl.IntVar(&a.imapMaxUserIP, "imap-max-conns-per-user-ip", frontend.DefaultIMAPMaxConnsPerUserIP, "logged-in IMAP sessions of one mailbox from one address on this node (over it: LOGIN gets NO [UNAVAILABLE]; 0: the default)")
	fl.DurationVar(&a.accountCheck, "account-check-interval", frontend.DefaultAccountCheckInterval, "how often, at most, a logged-in IMAP or POP3 session asks whether its login still holds (mailbox disabled or removed, or password changed: the session ends)")
	fl.IntVar(&a.imapSearchKeys, "imap-max-search-keys", frontend.DefaultIMAPMaxSearchKeys, "keys of one IMAP SEARCH, NOT and OR included (over it: NO [LIMIT]); each is a step per message of the folder")
	fl.IntVar(&a.imapSearchText, "imap-max-search-text-keys", frontend.DefaultIMAPMaxSearchTextKeys, "BODY and TEXT keys of one IMAP SEARCH (over it: NO [LIMIT]); each reads every message it is matched against")
	fl.IntVar(&a.imapFetchSections, "imap-max-fetch-sections", frontend.DefaultIMAPMaxFetchSections, "body sections (BODY[], BINARY[], BINARY.SIZE[]) of one IMAP FETCH (over it: NO [LIMIT]); each may read the message again")
	fl.Int64Var(&a.imapCacheBytes, "imap-cache-bytes", frontend.DefaultIMAPCacheBytes, "memory for parsed message headers and BODYSTRUCTUREs that IMAP FETCH and SEARCH reuse")
}

// newAuthenticator is the password check IMAP, POP3 and submission share,
// so that failures are slowed across all three.
func newAuthenticator(f *serverFlags, n *node.Node, log *slog.Logger) *frontend.Authenticator {
	a := &f.access
	return frontend.NewAuthenticator(n, frontend.AuthConfig{AllowInsecure: a.allowInsecureAuth,
		FailureDelay: a.authDelay, MaxDelay: a.authMaxDelay}, log)
}

// startAccess starts the IMAP and POP3 listeners that have an address
// and returns a function that closes them.
func startAccess(f *serverFlags, n *node.Node, auth *frontend.Authenticator, tlsCfg *tls.Config, log *slog.Logger) (func(context.Context), error) {
	a := &f.access
	imap := frontend.NewIMAPServer(n, auth, frontend.IMAPConfig{TLS: tlsCfg, MaxAppendBytes: f.mail.maxMessage,
		MaxConnsPerIP: f.mail.maxConn, IdleTimeout: a.imapIdle, PreAuthTimeout: a.imapPreAuth, WriteTimeout: a.imapWrite, CacheBytes: a.imapCacheBytes, MaxConns: a.imapMaxConns,
		MaxConnsPerUserIP: a.imapMaxUserIP, AccountCheckInterval: a.accountCheck,
		MaxSearchKeys: a.imapSearchKeys, MaxSearchTextKeys: a.imapSearchText,
		MaxFetchSections: a.imapFetchSections}, log)
	pop3 := frontend.NewPOP3Server(n, auth, frontend.POP3Config{Hostname: f.mail.hostname, ServerID: f.id,
		TLS: tlsCfg, MaxConnsPerIP: f.mail.maxConn, MaxConns: f.mail.maxConns, IdleTimeout: a.pop3Idle, PreAuthTimeout: a.pop3PreAuth, KeepUnseen: a.pop3KeepUnseen,
		AccountCheckInterval: a.accountCheck}, log)
	for _, register := range []func(prometheus.Registerer) error{imap.RegisterMetrics, pop3.RegisterMetrics} {
		if err := register(n.Metrics()); err != nil {
			imap.Close()
			pop3.Close()
			return nil, err
		}
	}
	var lns []net.Listener
	stop := func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { imap.Shutdown(ctx) })
		wg.Go(func() { pop3.Shutdown(ctx) })
		wg.Wait()
		for _, ln := range lns { // those whose Serve had not begun
			ln.Close()
		}
	}
	for _, l := range []struct {
		proto, addr string
		serve       func(net.Listener) error
		tls         bool
	}{
		{"imap", f.imap, imap.Serve, false}, {"imaps", a.imaps, imap.ServeTLS, true},
		{"pop3", f.pop3, pop3.Serve, false}, {"pop3s", a.pop3s, pop3.ServeTLS, true},
	} {
		if l.addr == "" {
			continue
		}
		if l.tls && tlsCfg == nil {
			stop(stopped())
			return nil, fmt.Errorf("--%s needs --tls-cert and --tls-key", l.proto)
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			stop(stopped())
			return nil, fmt.Errorf("listen %s: %w", l.proto, err)
		}
		lns = append(lns, ln)
		go func() {
			if err := l.serve(ln); err != nil {
				log.Debug("listener stopped", "protocol", l.proto, "err", err)
			}
		}()
		log.Info("listening", "protocol", l.proto, "addr", ln.Addr().String())
	}
	return stop, nil
}
