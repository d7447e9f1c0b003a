package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"powermail/node"
)

// ErrInsecureAuth refuses a plaintext password on a connection without
// TLS, unless AuthConfig.AllowInsecure is set (RFC 8314 section 3, RFC
// 2595 section 2.3).
var ErrInsecureAuth = errors.New("plaintext authentication requires TLS")

// PasswordChecker verifies a password; MailStore provides it.
type PasswordChecker interface {
	Authenticate(ctx context.Context, user, password string) (string, error)
}

// AuthConfig tunes login throttling. Zero fields take the defaults.
type AuthConfig struct {
	// AllowInsecure permits plaintext passwords without TLS
	// (--allow-insecure-auth; for loopback trials only).
	AllowInsecure bool
	// FailureDelay is the delay after the first failure of an IP or an
	// account; it doubles with each further failure up to MaxDelay.
	FailureDelay time.Duration
	MaxDelay     time.Duration
	// Forget drops the failure count of a key that has not failed for
	// this long.
	Forget time.Duration
	// MaxTracked bounds the number of IPs and accounts remembered.
	MaxTracked int
}

// Auth defaults.
const (
	DefaultFailureDelay = 500 * time.Millisecond
	DefaultMaxDelay     = 30 * time.Second
	DefaultForget       = 15 * time.Minute
	DefaultMaxTracked   = 100000
)

func (c AuthConfig) withDefaults() AuthConfig {
	if c.FailureDelay <= 0 {
		c.FailureDelay = DefaultFailureDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.Forget <= 0 {
		c.Forget = DefaultForget
	}
	if c.MaxTracked <= 0 {
		c.MaxTracked = DefaultMaxTracked
	}
	return c
}

// Authenticator is the one login path of SMTP AUTH, IMAP and POP3. It
// refuses plaintext without TLS, and it slows failures down per remote IP
// and per account with delays that double, so that neither one address
// guessing many accounts nor many addresses guessing one account get far.
type Authenticator struct {
	store PasswordChecker
	cfg   AuthConfig
	log   *slog.Logger

	mu       sync.Mutex
	failures map[string]*failure

	logins *prometheus.CounterVec // by result, for RegisterMetrics
}

type failure struct {
	count int
	last  time.Time
}

// NewAuthenticator returns an Authenticator over store.
func NewAuthenticator(store PasswordChecker, cfg AuthConfig, log *slog.Logger) *Authenticator {
	if log == nil {
		log = slog.Default()
	}
	return &Authenticator{store: store, cfg: cfg.withDefaults(), log: log, failures: map[string]*failure{},
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powermail_logins_total",
			Help: "Password logins over IMAP and POP3 by result: ok, failed (wrong user or password), insecure (refused without TLS), unavailable.",
		}, []string{"result"})}
}

// RegisterMetrics adds the login counts to reg. It fails if reg holds
// them already.
func (a *Authenticator) RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(a.logins); err != nil {
		return fmt.Errorf("frontend: register login metrics: %w", err)
	}
	return nil
}

// AllowInsecure reports whether plaintext passwords are accepted without
// TLS (protocols use it to decide what to advertise).
func (a *Authenticator) AllowInsecure() bool { return a.cfg.AllowInsecure }

// Login checks user's password for a client at remoteIP. secure says the
// connection is under TLS. It returns the canonical mailbox address, or an
// error wrapping ErrInsecureAuth, node.ErrAuthFailed or
// node.ErrUnavailable. Before checking, it waits out the delay earned by
// earlier failures of the IP or the account.
func (a *Authenticator) Login(ctx context.Context, remoteIP, user, password string, secure bool) (string, error) {
	addr, err := a.login(ctx, remoteIP, user, password, secure)
	result := "unavailable"
	switch {
	case err == nil:
		result = "ok"
	case errors.Is(err, node.ErrAuthFailed):
		result = "failed"
	case errors.Is(err, ErrInsecureAuth):
		result = "insecure"
	}
	a.logins.WithLabelValues(result).Inc()
	return addr, err
}

func (a *Authenticator) login(ctx context.Context, remoteIP, user, password string, secure bool) (string, error) {
	if !secure && !a.cfg.AllowInsecure {
		return "", ErrInsecureAuth
	}
	ipKey, userKey := "ip:"+remoteIP, "user:"+node.AccountKey(user)
	if d := max(a.delay(ipKey), a.delay(userKey)); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w: %v", node.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
	addr, err := a.store.Authenticate(ctx, user, password)
	switch {
	case err == nil:
		a.reset(userKey)
		return addr, nil
	case errors.Is(err, node.ErrAuthFailed):
		a.fail(ipKey)
		a.fail(userKey)
		a.log.Info("login failed", "ip", remoteIP, "user", user)
	}
	return "", err
}

// delay is the wait earned by key's failures: FailureDelay doubled per
// failure after the first, capped at MaxDelay.
func (a *Authenticator) delay(key string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[key]
	if f == nil || time.Since(f.last) > a.cfg.Forget {
		return 0
	}
	d := a.cfg.FailureDelay
	for i := 1; i < f.count && d < a.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, a.cfg.MaxDelay)
}

func (a *Authenticator) fail(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.failures[key]
	if f == nil || time.Since(f.last) > a.cfg.Forget {
		if len(a.failures) >= a.cfg.MaxTracked {
			a.prune()
		}
		f = &failure{}
		a.failures[key] = f
	}
	f.count++
	f.last = time.Now()
}

func (a *Authenticator) reset(key string) {
	a.mu.Lock()
	delete(a.failures, key)
	a.mu.Unlock()
}

// prune drops forgotten entries and, if the table is still full, half of
// the rest: under a flood of distinct keys memory stays bounded, at the
// price of forgetting some failures early.
func (a *Authenticator) prune() {
	for k, f := range a.failures {
		if time.Since(f.last) > a.cfg.Forget {
			delete(a.failures, k)
		}
	}
	drop := len(a.failures) - a.cfg.MaxTracked/2
	for k := range a.failures {
		if drop <= 0 {
			break
		}
		delete(a.failures, k)
		drop--
	}
}
