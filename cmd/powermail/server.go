package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"powermail/fsm"
	"powermail/node"
	"powermail/storage"
)

type serverFlags struct {
	id, data, cluster, advertise, admin, adminAdvertise string
	smtp, lmtp, imap, pop3, submission, submissions     string
	join, secretFile, logLevel, logFormat               string
	minFree                                             string
	bootstrap, hugePages                                bool
	replicas, writeQuorum                               int
	timerSlack, bodySyncInterval, adminReadTimeout      time.Duration
	bodyStoreReopen                                     time.Duration
	adminMaxConns, adminMaxConnsPerIP                   int
	restoreMaxBytes                                     int64
	mail                                                mailFlags
	access                                              accessFlags
	redundancy                                          redundancyFlags
	queue                                               queueFlags
	raft                                                raftFlags
	clusterTLS, adminTLS                                tlsFlags
}

func newServerCmd() *cobra.Command {
	f := &serverFlags{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a cluster node",
		Long: `Run a cluster node. Every setting may also come from POWERMAIL_<FLAG>
(for example POWERMAIL_DATA); the cluster secret comes from --secret-file or
POWERMAIL_SECRET and is also the admin API token.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.id, "id", "", "node ID, unique in the cluster (required)")
	fl.StringVar(&f.data, "data", "", "data directory (required)")
	fl.StringVar(&f.cluster, "cluster", "127.0.0.1:7000", "raft and cluster RPC listen address")
	fl.StringVar(&f.advertise, "advertise", "", "cluster address peers dial (default: the bound --cluster address)")
	fl.StringVar(&f.admin, "admin", "127.0.0.1:8000", "admin HTTP API listen address")
	fl.StringVar(&f.adminAdvertise, "admin-advertise", "", "admin address told to other nodes (default: the bound --admin address; on a wildcard, the --advertise host with its port)")
	fl.DurationVar(&f.adminReadTimeout, "admin-read-timeout", 5*time.Minute, "longest an admin API request may take to arrive, header and body (an import's CSV is the largest)")
	fl.IntVar(&f.adminMaxConns, "admin-max-conns", 256, "open admin API connections at most; one more is closed at once")
	fl.IntVar(&f.adminMaxConnsPerIP, "admin-max-conns-per-ip", 32, "open admin API connections from one address at most, so that one stranger cannot fill --admin-max-conns (the node's own host and the members' hosts have pools of their own); an IPv6 client counts by its /84")
	fl.Int64Var(&f.restoreMaxBytes, "restore-max-bytes", node.DefaultRestoreMaxBytesCeiling, "largest message size a mailbox restore may ask for (its --max-message-size); a larger one is refused. Messages over 1 MiB go through an unlinked file in --data, not memory")
	fl.StringVar(&f.smtp, "smtp", "", "SMTP listen address")
	fl.StringVar(&f.lmtp, "lmtp", "", "LMTP listen address")
	fl.StringVar(&f.submission, "submission", "", "message submission listen address (RFC 6409, usually :587): AUTH with a mailbox's password, STARTTLS, and mail to anywhere")
	fl.StringVar(&f.submissions, "submissions", "", "message submission over implicit TLS listen address (RFC 8314, usually :465; needs --tls-cert)")
	fl.StringVar(&f.imap, "imap", "", "IMAP listen address")
	fl.StringVar(&f.pop3, "pop3", "", "POP3 listen address")
	fl.BoolVar(&f.bootstrap, "bootstrap", false, "create a new cluster with this node as its first member (ignored once the data directory holds a cluster)")
	fl.StringVar(&f.join, "join", "", "admin address of any member to join through")
	fl.IntVar(&f.replicas, "replicas", 2, "with --bootstrap: copies of each message body (R)")
	fl.IntVar(&f.writeQuorum, "write-quorum", 0, "with --bootstrap: durable copies before a message is acknowledged (W, default R)")
	fl.StringVar(&f.secretFile, "secret-file", "", "file holding the cluster secret (or set POWERMAIL_SECRET)")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fl.BoolVar(&f.hugePages, "huge-pages", true, "back Pebble's memtables with transparent huge pages: on Linux, unless THP is 'never' or GLIBC_TUNABLES already names glibc.malloc.hugetlb, re-execute once with glibc.malloc.hugetlb=1 added")
	fl.DurationVar(&f.timerSlack, "timer-slack", time.Millisecond, "Linux timer slack for the server's threads, so that the kernel can merge the Go runtime's frequent short sleeps (at most 10ms; re-executes once to apply it; 0 keeps the inherited slack)")
	fl.DurationVar(&f.bodySyncInterval, "body-sync-interval", node.DefaultBodySyncInterval, "least time between two fsyncs of the body store's log; deliveries arriving meanwhile share the next one (0: none; at most 100ms)")
	fl.DurationVar(&f.bodyStoreReopen, "body-store-reopen-interval", node.DefaultBodyStoreReopenInterval, "after a failed write or fsync (a full disk, an I/O error) failed the body store, try to reopen it this long after, and twice as long after each failed try (up to 8 times this); it reopens only with --min-free-space free (0: never, the node stays failed until restarted)")
	fl.StringVar(&f.minFree, "min-free-space", "256MiB", "free space new message bodies and raft snapshot streams must leave on the data directory's filesystem; below it this node answers deliveries with 452 4.3.1, peers place copies elsewhere, and raft snapshots wait (bytes, or with K, M, G or T; 0: no reserve)")
	f.mail.register(fl)
	f.access.register(fl)
	f.redundancy.register(fl)
	f.queue.register(fl)
	f.raft.register(fl)
	registerClusterTLS(&f.clusterTLS, fl)
	registerAdminTLS(&f.adminTLS, fl)
	return cmd
}

func runServer(ctx context.Context, f *serverFlags) error {
	minFree, err := f.validate()
	if err != nil {
		return err
	}
	tuneErr := reexecTuned(f.hugePages, f.timerSlack) // returns only if it did not exec
	log, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return err
	}
	if tuneErr != nil {
		log.Warn("running without process tuning", "err", tuneErr)
	}
	log.Info("process tuning", "huge_pages", strings.Contains(os.Getenv(tunablesEnv), hugeTunable+"=1"),
		"timer_slack", timerSlack())
	secret, err := readSecret(f.secretFile, log)
	if err != nil {
		return err
	}
	certs, err := f.loadTLS()
	if err != nil {
		return err
	}
	reloadOnHangup(ctx, certs, log)
	cfg, err := f.nodeConfig(secret, minFree, certs, log)
	if err != nil {
		return err
	}
	if err := f.clientPortsFree(); err != nil {
		return err
	}
	n, err := node.New(ctx, cfg)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		// Stopped (SIGTERM, ^C) while starting: a stop asked for, not a
		// failure. An unfinished bootstrap is finished at the next start.
		log.Info("stopped while starting", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if err := certs.register(n.Metrics()); err != nil {
		n.Close()
		return err
	}
	stopMail, err := startMail(f, n, certs["client"], log)
	if err != nil {
		n.Close()
		return err
	}
	log.Info("node running", "id", f.id, "cluster", n.ClusterAddr(), "admin", n.AdminAddr())
	<-ctx.Done()
	log.Info("shutting down")
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		stopMail(sctx) // drain SMTP, IMAP and POP3 clients before the node goes
		done <- n.Close()
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		// What still runs is what an operator needs to report the hang.
		pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
		return fmt.Errorf("shutdown did not finish in 30s (goroutines above)")
	}
}

// minBodyStoreReopen bounds --body-store-reopen-interval from below: the
// node looks for a failed store at this pace, and each try closes and
// replays the store.
const minBodyStoreReopen = time.Second

// validate checks the flags that can be checked before anything starts,
// and returns --min-free-space in bytes.
func (f *serverFlags) validate() (int64, error) {
	if f.timerSlack < 0 || f.timerSlack > maxTimerSlack {
		return 0, fmt.Errorf("--timer-slack %v: must be between 0 and %v", f.timerSlack, maxTimerSlack)
	}
	if f.bodySyncInterval < 0 || f.bodySyncInterval > storage.MaxSyncInterval {
		return 0, fmt.Errorf("--body-sync-interval %v: must be between 0 and %v", f.bodySyncInterval, storage.MaxSyncInterval)
	}
	if f.bodyStoreReopen < 0 || (f.bodyStoreReopen > 0 && f.bodyStoreReopen < minBodyStoreReopen) {
		return 0, fmt.Errorf("--body-store-reopen-interval %v: must be 0 (never) or at least %v", f.bodyStoreReopen, minBodyStoreReopen)
	}
	minFree, err := parseSize(f.minFree)
	if err != nil {
		return 0, fmt.Errorf("--min-free-space: %w", err)
	}
	for _, check := range []func() error{f.raft.validate, func() error { return f.clusterTLS.validate(true) },
		func() error { return f.adminTLS.validate(false) }, f.queue.validate, f.redundancy.validate, f.validateBootstrap} {
		if err := check(); err != nil {
			return 0, err
		}
	}
	if f.submissions != "" && f.mail.tlsCert == "" {
		return 0, fmt.Errorf("--submissions needs --tls-cert and --tls-key")
	}
	if f.submission != "" && f.mail.tlsCert == "" && !f.access.allowInsecureAuth {
		return 0, fmt.Errorf("--submission needs --tls-cert and --tls-key: AUTH is refused without TLS (--allow-insecure-auth only for trials on loopback)")
	}
	for _, v := range []struct {
		flag string
		n    int64
	}{{"--imap-cache-bytes", f.access.imapCacheBytes}, {"--imap-max-conns", int64(f.access.imapMaxConns)}, {"--imap-max-conns-per-user-ip", int64(f.access.imapMaxUserIP)}, {"--imap-max-search-keys", int64(f.access.imapSearchKeys)}, {"--imap-max-search-text-keys", int64(f.access.imapSearchText)}, {"--imap-max-fetch-sections", int64(f.access.imapFetchSections)},
		{"--password-check-memory", f.access.passwordMemory}, {"--max-conns", int64(f.mail.maxConns)},
		{"--admin-max-conns", int64(f.adminMaxConns)}, {"--admin-max-conns-per-ip", int64(f.adminMaxConnsPerIP)},
		{"--admin-read-timeout", int64(f.adminReadTimeout)}, {"--restore-max-bytes", f.restoreMaxBytes}} {
		if v.n < 0 {
			return 0, fmt.Errorf("%s %d: must not be negative (0: the default)", v.flag, v.n)
		}
	}
	if d := f.mail.refusedNoticeTimeout; d != 0 && (d < time.Second || d > node.MaxRefusedNoticeTimeout) {
		return 0, fmt.Errorf("--smtp-refused-notice-timeout %v: must be between 1s and %v (0: the default)", d, node.MaxRefusedNoticeTimeout)
	}
	if f.access.accountCheck < 0 {
		return 0, fmt.Errorf("--account-check-interval %v: must not be negative (0: the default)", f.access.accountCheck)
	}
	return minFree, f.validateRequired()
}

// validateRequired names a missing --id or --data, after any flag given
// a bad value and before the secret is asked for.
func (f *serverFlags) validateRequired() error {
	switch {
	case f.id == "" && f.data == "":
		return fmt.Errorf("--id and --data are required: the node's ID, unique in the cluster, and its data directory")
	case f.id == "":
		return fmt.Errorf("--id is required: the node's ID, unique in the cluster")
	case f.data == "":
		return fmt.Errorf("--data is required: the node's data directory")
	}
	return nil
}

// validateBootstrap refuses an R or W the state machine would refuse:
// the first member would retry writing them for ever, and never start.
func (f *serverFlags) validateBootstrap() error {
	if !f.bootstrap {
		return nil
	}
	if f.replicas < 1 || f.replicas > fsm.MaxReplicas {
		return fmt.Errorf("--replicas %d: must be 1 to %d", f.replicas, fsm.MaxReplicas)
	}
	if f.writeQuorum < 0 || f.writeQuorum > f.replicas {
		return fmt.Errorf("--write-quorum %d: must be 1 to --replicas (%d), or 0 for R", f.writeQuorum, f.replicas)
	}
	return nil
}

// loadTLS reads every TLS use's files (nil entries where not set).
func (f *serverFlags) loadTLS() (tlsSet, error) {
	certs := tlsSet{}
	var err error
	if certs["client"], err = f.mail.tlsFiles(); err != nil {
		return nil, err
	}
	if certs["cluster"], err = f.clusterTLS.files(true); err != nil {
		return nil, err
	}
	if certs["admin"], err = f.adminTLS.files(false); err != nil {
		return nil, err
	}
	return certs, nil
}

// nodeConfig is the node's configuration from the flags.
func (f *serverFlags) nodeConfig(secret []byte, minFree int64, certs tlsSet, log *slog.Logger) (node.Config, error) {
	adminRoots, err := f.adminTLS.roots()
	if err != nil {
		return node.Config{}, err
	}
	if f.writeQuorum == 0 {
		f.writeQuorum = f.replicas
	}
	cfg := node.Config{
		ID: f.id, DataDir: f.data, ClusterAddr: f.cluster, AdvertiseAddr: f.advertise,
		AdminAddr: f.admin, AdminAdvertise: f.adminAdvertise, Secret: secret, AdminRoots: adminRoots,
		Bootstrap: f.bootstrap, Join: f.join, Logger: log,
		BootstrapSettings:  &node.BootstrapSettings{Replicas: f.replicas, WriteQuorum: f.writeQuorum},
		MaildropLease:      f.access.maildropLease,
		RemoteReadMax:      f.access.remoteReadMax,
		RemoteCacheBytes:   f.access.remoteCacheBytes,
		PasswordMemory:     f.access.passwordMemory,
		StorageCacheBytes:  f.access.storageCacheBytes,
		BodySyncInterval:   f.bodySyncInterval,
		AdminReadTimeout:   f.adminReadTimeout,
		AdminMaxConns:      f.adminMaxConns,
		AdminMaxConnsPerIP: f.adminMaxConnsPerIP,
		RestoreMaxBytes:    f.restoreMaxBytes,

		RefusedNoticeTimeout: f.mail.refusedNoticeTimeout,
	}
	if cfg.MinFreeBytes = minFree; minFree == 0 {
		cfg.MinFreeBytes = -1 // the flag's 0 is "none"; the config's is "default"
	}
	if f.bodySyncInterval == 0 {
		cfg.BodySyncInterval = -1 // the flag's 0 is "none"; the config's is "default"
	}
	if cfg.BodyStoreReopenInterval = f.bodyStoreReopen; f.bodyStoreReopen == 0 {
		cfg.BodyStoreReopenInterval = -1 // the flag's 0 is "never"; the config's is "default"
	}
	f.redundancy.apply(&cfg)
	if err := f.queue.apply(&cfg, f.mail.hostname); err != nil {
		return node.Config{}, err
	}
	if certs["cluster"] != nil {
		cfg.ClusterTLS, cfg.ClusterTLSMixed = certs["cluster"].ClusterConfig(), f.clusterTLS.mode == "mixed"
	}
	if certs["admin"] != nil {
		cfg.AdminTLS = certs["admin"].ServerConfig()
	}
	f.raft.apply(&cfg)
	return cfg, nil
}

// readSecret reads the cluster secret from file, or from POWERMAIL_SECRET
// without one. It warns of a file every user of the host may read: the
// secret lets its holder join the cluster and is the admin token.
func readSecret(file string, log *slog.Logger) ([]byte, error) {
	var s string
	if file != "" {
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read secret file: %w", err)
		}
		if fi, err := os.Stat(file); err == nil && fi.Mode().Perm()&0o004 != 0 {
			log.Warn("the secret file is readable by every user of this host; it holds the cluster secret, which is also the admin token (chmod o-r it)",
				"file", file, "mode", fi.Mode().Perm().String())
		}
		s = string(raw)
	} else {
		s = os.Getenv("POWERMAIL_SECRET")
	}
	s = strings.TrimSpace(s)
	if len(s) < 16 {
		return nil, fmt.Errorf("a cluster secret of at least 16 characters is required (--secret-file or POWERMAIL_SECRET)")
	}
	return []byte(s), nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", format)
}
