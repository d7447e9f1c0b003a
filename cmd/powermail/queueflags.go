package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"powermail/node"
)

// queueFlags configure the outbound queue (forwards to other providers).
type queueFlags struct {
	relayHost, relayUser, relayPasswordFile, relayCA string
	relayRequireTLS                                  bool
	srsDomain                                        string
	lifetime, delayNotify                            time.Duration
	lease, retryMin, retryMax, hostDown              time.Duration
	greeting, data, busyWait                         time.Duration
	maxConnsPerDest, concurrency                     int
	dkim                                             []string
}

func (q *queueFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&q.relayHost, "relay-host", "", "send outbound mail through this smarthost (host:port) instead of MX lookups")
	fl.StringVar(&q.relayUser, "relay-user", "", "AUTH PLAIN user for --relay-host")
	fl.StringVar(&q.relayPasswordFile, "relay-password-file", "", "file holding the --relay-user password (or set POWERMAIL_RELAY_PASSWORD)")
	fl.BoolVar(&q.relayRequireTLS, "relay-require-tls", false, "require verified STARTTLS with --relay-host (always so with --relay-user)")
	fl.StringVar(&q.relayCA, "relay-ca", "", "PEM CA certificate(s) that verify --relay-host's certificate (default: the system's)")
	fl.StringVar(&q.srsDomain, "srs-domain", "", "hosted domain for SRS-rewritten senders of forwarded mail (default: the first hosted domain)")
	fl.DurationVar(&q.lifetime, "queue-lifetime", 5*24*time.Hour, "how long outbound mail is retried before it bounces")
	fl.DurationVar(&q.delayNotify, "queue-delay-notify", 4*time.Hour, "send a delayed-delivery notice after this long (negative: never)")
	fl.IntVar(&q.maxConnsPerDest, "queue-max-conns", 10, "open connections per destination server (0: 10)")
	fl.IntVar(&q.concurrency, "queue-concurrency", 100, "outbound entries the leader sends at once (0: 100)")
	fl.DurationVar(&q.busyWait, "queue-busy-wait", 2*time.Second, "an entry whose destination server has --queue-max-conns in use waits this long, then goes back to the queue (due again when the server should have room at its pace, at most --queue-retry-max ahead; no attempt counted) so that others' mail goes first (negative: wait for the whole attempt)")
	fl.DurationVar(&q.lease, "queue-lease", node.DefaultQueueLease, "how long the leader holds an entry it works; after a crash others retry it once this lapses")
	fl.DurationVar(&q.retryMin, "queue-retry-min", time.Minute, "first retry delay after a temporary failure (doubles per attempt, with jitter)")
	fl.DurationVar(&q.retryMax, "queue-retry-max", 2*time.Hour, "longest retry delay")
	fl.DurationVar(&q.greeting, "queue-greeting-timeout", 2*time.Minute, "wait this long for a destination server's greeting and each reply while setting up a session")
	fl.DurationVar(&q.data, "queue-data-timeout", 3*time.Minute, "give up on a destination server that takes no more of a message for this long (RFC 5321 §4.5.3.2.5; 0: 3 minutes)")
	fl.DurationVar(&q.hostDown, "queue-host-down-time", time.Minute, "skip a destination server this long after it failed a connection (negative: never skip)")
	fl.StringArrayVar(&q.dkim, "dkim", nil, "DOMAIN:SELECTOR:KEYFILE: sign outgoing mail from DOMAIN's senders with this PEM private key (RSA or Ed25519; publish the public key at SELECTOR._domainkey.DOMAIN); repeat per domain, or per key: every key of a domain signs")
}

// validate reads every --dkim key once, and checks the lifetime, so
// that a mistake stops the server before anything starts.
func (q *queueFlags) validate() error {
	if q.lifetime <= 0 {
		// Zero would read as the default, and a negative lifetime would
		// bounce every message at its first temporary failure.
		return fmt.Errorf("--queue-lifetime %v: must be positive", q.lifetime)
	}
	for _, spec := range q.dkim {
		if _, err := node.ParseDKIMKey(spec); err != nil {
			return fmt.Errorf("--dkim: %w", err)
		}
	}
	return nil
}

func (q *queueFlags) apply(cfg *node.Config, hostname string) error {
	if q.lease < 2*time.Second || q.retryMin <= 0 || q.retryMax < q.retryMin {
		return fmt.Errorf("queue: --queue-lease must be at least 2s and 0 < --queue-retry-min <= --queue-retry-max")
	}
	if q.greeting <= 0 {
		return fmt.Errorf("queue: --queue-greeting-timeout %v must be positive", q.greeting)
	}
	if q.data < 0 {
		return fmt.Errorf("queue: --queue-data-timeout %v must not be negative", q.data)
	}
	if q.concurrency < 0 || q.maxConnsPerDest < 0 {
		return fmt.Errorf("queue: --queue-concurrency %d and --queue-max-conns %d must not be negative", q.concurrency, q.maxConnsPerDest)
	}
	pw := os.Getenv("POWERMAIL_RELAY_PASSWORD")
	if q.relayPasswordFile != "" {
		raw, err := os.ReadFile(q.relayPasswordFile)
		if err != nil {
			return fmt.Errorf("read relay password file: %w", err)
		}
		pw = strings.TrimSpace(string(raw))
	}
	cfg.Queue = node.QueueConfig{Hostname: hostname, SRSDomain: q.srsDomain, Lifetime: q.lifetime, DelayNotify: q.delayNotify,
		MaxConnsPerDest: q.maxConnsPerDest, RelayHost: q.relayHost, RelayUser: q.relayUser, RelayPassword: pw,
		RelayRequireTLS: q.relayRequireTLS, Lease: q.lease, RetryMin: q.retryMin, RetryMax: q.retryMax, HostDownTime: q.hostDown,
		GreetingTimeout: q.greeting, DataTimeout: q.data, Concurrency: q.concurrency, BusyWait: q.busyWait}
	if q.relayCA != "" {
		roots, err := node.LoadCertPool(q.relayCA)
		if err != nil {
			return fmt.Errorf("--relay-ca: %w", err)
		}
		cfg.Queue.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	for _, spec := range q.dkim {
		key, err := node.ParseDKIMKey(spec)
		if err != nil {
			return fmt.Errorf("--dkim: %w", err)
		}
		cfg.Queue.DKIM = append(cfg.Queue.DKIM, key)
	}
	return nil
}
