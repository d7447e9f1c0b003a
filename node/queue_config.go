package node

import (
	"crypto/tls"
	"net"
	"os"
	"time"
)

// QueueConfig tunes the outbound queue (queue.go). Zero values mean the
// defaults below.
type QueueConfig struct {
	// Hostname names this cluster in EHLO, Received: lines and DSNs.
	// Default: the OS hostname.
	Hostname string
	// DKIM holds a signing key per sender domain (dkim.go).
	DKIM []DKIMKey
	// SRSDomain is the hosted domain used in rewritten envelope senders
	// (srs.go). Default: the first hosted domain.
	SRSDomain string
	// Interval is how often the leader looks for due entries (it is also
	// woken by every queued delivery). Default 1 s.
	Interval time.Duration
	// Lease is how long a worker holds an entry; a dead worker's entries
	// are retried after it. An attempt is cut off well before. Default
	// DefaultQueueLease.
	Lease time.Duration
	// Batch is the number of entries leased at once; Concurrency the
	// entries worked in parallel. Defaults 64 and 100 (Postfix's
	// default_process_limit is 100 too).
	Batch       int
	Concurrency int
	// Lifetime is how long a message is retried before it bounces
	// (default 5 days); DelayNotify when the sender is told it is delayed
	// (default 4 h; negative: never).
	Lifetime    time.Duration
	DelayNotify time.Duration
	// RetryMin and RetryMax bound the exponential backoff (defaults 1 min
	// and 2 h), which gets ±20 % jitter. RetryMax also bounds how far
	// ahead an entry given back for a busy destination is due.
	RetryMin time.Duration
	RetryMax time.Duration
	// MaxConnsPerDest caps the open connections to one destination host
	// (default 10; Postfix allows 20 a destination, reached by slow
	// start); idle ones are reused for IdleTimeout (default 30 s).
	MaxConnsPerDest int
	IdleTimeout     time.Duration
	// BusyWait is how long an attempt waits for a connection to a
	// destination host whose MaxConnsPerDest are all in use; then it
	// gives its entry back, due again when the host should have room
	// (busydest.go) and not counted as an attempt, so that one slow or
	// backlogged destination does not hold every worker (default 2 s;
	// negative: wait for the attempt's whole deadline).
	BusyWait time.Duration
	// Resolver looks up MX and address records (nil: net.DefaultResolver).
	Resolver *net.Resolver
	// Port is the SMTP port of MX hosts (default 25).
	Port string
	// DestOverride, when set, maps a recipient domain to a host:port,
	// bypassing DNS (tests, and pinning a partner's server).
	DestOverride map[string]string
	// RelayHost sends everything through a smarthost (host:port) instead
	// of MX lookups, with AUTH PLAIN when RelayUser is set.
	RelayHost       string
	RelayUser       string
	RelayPassword   string
	RelayRequireTLS bool
	// TLS is the client TLS configuration for STARTTLS (nil: system
	// roots; MX delivery is opportunistic, so certificates are not
	// verified there unless RelayRequireTLS applies).
	TLS *tls.Config
	// MaxHops refuses a message with more Received: lines (RFC 5321
	// §6.3, default 50); MaxOwnHops one that passed this cluster that
	// many times already (default 3): a forward loop.
	MaxHops    int
	MaxOwnHops int
	// DialTimeout bounds a connection attempt (default 30 s), AttemptTimeout
	// one entry's whole attempt (default Lease/2).
	DialTimeout    time.Duration
	AttemptTimeout time.Duration
	// GreetingTimeout bounds the wait for a server's greeting and each
	// reply while a session is set up (default 2 min; RFC 5321
	// §4.5.3.2.1 suggests 5). A dial has DialTimeout + GreetingTimeout
	// in all, within the attempt's own deadline.
	GreetingTimeout time.Duration
	// DataTimeout bounds each write of the message to a server (RFC 5321
	// §4.5.3.2.5, the data block's 3 minutes, the default): a server that
	// stops reading in the middle of the data frees its worker and its
	// connection slot then, not when the whole attempt runs out.
	DataTimeout time.Duration
	// HostDownTime is how long a destination host that failed a dial (or
	// never greeted within the attempt) is skipped (default 1 min;
	// negative: never skipped).
	HostDownTime time.Duration
}

// DefaultQueueLease is how long a worker holds an entry it sends. An
// attempt may last half of it (AttemptTimeout): after up to five minutes
// of dials and greetings (two connections, for STARTTLS), that leaves the
// ten minutes RFC 5321 §4.5.3.2.6 gives a server to answer the final dot;
// giving up sooner sends the message again after the remote may have
// taken it. The cost: a crashed worker's entries wait this long.
const DefaultQueueLease = 30 * time.Minute

func (q *QueueConfig) setDefaults() {
	if q.Hostname == "" {
		q.Hostname = osHostname()
	}
	setDur(&q.Interval, time.Second)
	setDur(&q.Lease, DefaultQueueLease)
	setDur(&q.Lifetime, 5*24*time.Hour)
	setDur(&q.DelayNotify, 4*time.Hour)
	setDur(&q.RetryMin, time.Minute)
	setDur(&q.RetryMax, 2*time.Hour)
	setDur(&q.IdleTimeout, 30*time.Second)
	setDur(&q.DialTimeout, 30*time.Second)
	setDur(&q.AttemptTimeout, q.Lease/2)
	setDur(&q.HostDownTime, time.Minute)
	setDur(&q.BusyWait, 2*time.Second)
	if q.DataTimeout <= 0 {
		q.DataTimeout = 3 * time.Minute
	}
	if q.GreetingTimeout <= 0 {
		q.GreetingTimeout = 2 * time.Minute
	}
	setInt(&q.Batch, 64)
	setInt(&q.Concurrency, 100)
	setInt(&q.MaxConnsPerDest, 10)
	setInt(&q.MaxHops, 50)
	setInt(&q.MaxOwnHops, 3)
	if q.Port == "" {
		q.Port = "25"
	}
	if q.Resolver == nil {
		q.Resolver = net.DefaultResolver
	}
}

func setInt(v *int, def int) {
	if *v <= 0 {
		*v = def
	}
}

func osHostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
