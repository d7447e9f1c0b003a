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

// ErrThrottled refuses, without a password check, a login that would
// wait more than AuthConfig.MaxDelay in all: for the attempts on the same
// account (or failing IP) ahead of it, then for the delay their failures
// earn. It wraps node.ErrUnavailable: the same login later may well
// succeed.
var ErrThrottled = fmt.Errorf("%w: too many login attempts at once, try again later", node.ErrUnavailable)

// ErrSessionLimit refuses a login whose password was right because the
// mailbox has as many sessions from the client's address as it may
// (LoginAdmit). It does not wrap node.ErrUnavailable: the protocol's
// reply names the limit.
var ErrSessionLimit = errors.New("too many sessions of this mailbox from this address")

// PasswordChecker verifies a password; MailStore provides it.
type PasswordChecker interface {
	Authenticate(ctx context.Context, user, password string) (node.Login, error)
}

// AuthConfig tunes login throttling. Zero fields take the defaults.
type AuthConfig struct {
	// AllowInsecure permits plaintext passwords without TLS
	// (--allow-insecure-auth; for loopback trials only).
	AllowInsecure bool
	// FailureDelay is the delay after the first failure of an IP or an
	// account; it doubles with each further failure up to MaxDelay. It
	// is also the least time from a password check to its failure's
	// answer, which hides the cost of the check (Authenticator).
	FailureDelay time.Duration
	MaxDelay     time.Duration
	// Forget drops the failure count of a key that has not failed for
	// this long.
	Forget time.Duration
	// MaxTracked bounds the number of IPs, accounts and (IP, account)
	// pairs remembered on this node (throttleTable).
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
//
// Attempts in parallel do not share a delay. The attempts on one account
// stand in a line and check their passwords one after another, each
// waiting first the delay earned by the failures of those ahead of it:
// N simultaneous guesses take as long as N guesses one after the other,
// while a client opening several connections with the right password
// waits only for the checks ahead of it. An IP joins its line only once
// it has failed (so the logins of many users behind one NAT address run
// side by side until one of them fails). An attempt that would wait more
// than MaxDelay in all is refused (ErrThrottled) instead.
//
// A successful login forgives the account only the failures of its own
// client (node.ClientKey): those from elsewhere count until Forget, so
// that a guesser spread over addresses does not start over when the
// owner logs in. If some are left, the client gets a pass for the
// account: its next attempts there stand in a line of their own and do
// not wait the account's delay, until it fails there. What all this
// remembers is per node, and bounded (throttleTable).
//
// A failure is answered no sooner than FailureDelay after its check
// began, so that the answer does not tell an address without a mailbox
// (the node checks a default-cost dummy hash) from a mailbox with a
// costlier hash, such as an imported bcrypt hash of cost 12. A check
// longer than FailureDelay still shows by the excess, and
// fsm.CheckPasswordHash admits hashes that take about a second
// (frontend/DESIGN.md). The attempt leaves its lines before it waits
// this out, so the next attempt's turn does not wait for it.
type Authenticator struct {
	store PasswordChecker
	cfg   AuthConfig
	log   *slog.Logger

	mu    sync.Mutex
	table *throttleTable // under mu
	cost  checkCost      // the slowest recent check, a floor for failures

	logins *prometheus.CounterVec // by result, for RegisterMetrics
}

// failure is what the Authenticator remembers of one IP, account or
// (IP, account) pair.
type failure struct {
	key    string
	count  int           // failed checks not yet forgotten
	last   time.Time     // the latest failure, for AuthConfig.Forget
	inLine int           // attempts in the key's line, not yet done
	tail   chan struct{} // closed when the last attempt to join is done
	// pass (of a pair's record) says the client logged in to the
	// account since its last failure there, while failures from
	// elsewhere were left; last is then when. Until Forget, its logins
	// to the account stand in the pair's line instead of the
	// account's, and do not wait the account's delay.
	pass bool

	level      int      // the throttleTable list f is in; -1 if none
	prev, next *failure // f's neighbours in that list
}

// pairKey is the key of the failures of the client ipKey on the account
// userKey: a success forgives the account those, and no others, and
// may leave the pair a pass. An IP key holds no space (node.ClientKey),
// so the pair's key is unambiguous.
func pairKey(ipKey, userKey string) string { return "pair:" + ipKey + " " + userKey }

// NewAuthenticator returns an Authenticator over store.
func NewAuthenticator(store PasswordChecker, cfg AuthConfig, log *slog.Logger) *Authenticator {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	return &Authenticator{store: store, cfg: cfg, log: log, table: newThrottleTable(cfg),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "powermail_logins_total",
			Help: "Password logins over IMAP and POP3 by result: ok, failed (wrong user or password), insecure (refused without TLS), throttled (too many attempts at once), limited (right password, but the mailbox has too many sessions from the address), unavailable.",
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
// connection is under TLS. It returns the login (the canonical mailbox
// address, and the credential AccountActive checks later), or an
// error wrapping ErrInsecureAuth, node.ErrAuthFailed or
// node.ErrUnavailable (ErrThrottled among them). Before checking, it
// waits for its turn: until the attempts ahead of it on the account (and
// on the IP, once that has failed) are done, then the delay earned by the
// failures of the IP and of the account. A failure returns no sooner than
// FailureDelay after the check began, or when ctx ends.
func (a *Authenticator) Login(ctx context.Context, remoteIP, user, password string, secure bool) (node.Login, error) {
	return a.LoginAdmit(ctx, remoteIP, user, password, secure, nil)
}

// LoginAdmit is Login with a last say for the protocol: after a right
// password, admit (unless nil) is given the mailbox's address and may
// refuse the session with ErrSessionLimit, which the logins metric
// counts as "limited", not "ok".
func (a *Authenticator) LoginAdmit(ctx context.Context, remoteIP, user, password string, secure bool, admit func(addr string) error) (node.Login, error) {
	login, err := a.login(ctx, remoteIP, user, password, secure)
	if err == nil && admit != nil {
		err = admit(login.Address)
	}
	result := "unavailable"
	switch {
	case err == nil:
		result = "ok"
	case errors.Is(err, ErrSessionLimit):
		result = "limited"
	case errors.Is(err, node.ErrAuthFailed):
		result = "failed"
	case errors.Is(err, ErrInsecureAuth):
		result = "insecure"
	case errors.Is(err, ErrThrottled):
		result = "throttled"
	}
	a.logins.WithLabelValues(result).Inc()
	return login, err
}

func (a *Authenticator) login(ctx context.Context, remoteIP, user, password string, secure bool) (node.Login, error) {
	if !secure && !a.cfg.AllowInsecure {
		return node.Login{}, ErrInsecureAuth
	}
	login, began, err := a.check(ctx, remoteIP, user, password)
	if errors.Is(err, node.ErrAuthFailed) {
		a.holdFailure(ctx, began)
	}
	return login, err
}

// check waits for the attempt's turn, checks the password and counts a
// failure. It returns when the check began, and leaves the lines before
// it returns.
func (a *Authenticator) check(ctx context.Context, remoteIP, user, password string) (node.Login, time.Time, error) {
	ipKey, userKey := node.ClientKeyOf(remoteIP), node.AccountKey(user)
	keys := [2]string{"ip:" + ipKey, "user:" + userKey}
	pair := pairKey(ipKey, userKey)
	start := time.Now()
	places := a.join(keys, pair, start)
	defer a.leave(places)
	if err := a.waitTurn(ctx, keys, pair, places, start); err != nil {
		if errors.Is(err, ErrThrottled) {
			a.log.Debug("login throttled", "ip", remoteIP, "user", user)
		}
		return node.Login{}, time.Time{}, err
	}
	began := time.Now()
	login, err := a.store.Authenticate(ctx, user, password)
	if err == nil || errors.Is(err, node.ErrAuthFailed) {
		now := time.Now()
		a.cost.note(now.Sub(began), now)
	}
	switch {
	case err == nil:
		a.forgive(keys[1], pair)
		return login, began, nil
	case errors.Is(err, node.ErrAuthFailed):
		a.fail(keys[0], keys[1], pair)
		a.log.Info("login failed", "ip", remoteIP, "user", user)
	}
	return node.Login{}, began, err
}

// holdFailure holds a failed attempt's answer until FailureDelay after
// its check began, or as long as the slowest recent check took if that is
// longer (checkCost), so that the check's cost, which depends on the
// mailbox's hash (or on there being none), is hidden in that time. The
// attempt has left its lines: the next attempt's turn does not wait for
// this. It returns early, the failure unchanged, when ctx ends.
func (a *Authenticator) holdFailure(ctx context.Context, began time.Time) {
	floor := max(a.cfg.FailureDelay, a.cost.slowest(time.Now()))
	if err := sleepCtx(ctx, time.Until(began.Add(floor))); err != nil {
		a.log.Debug("failed login answered before the failure delay", "err", err)
	}
}

// place is an attempt's place in one key's line.
type place struct {
	f     *failure      // the key's record; nil if not in its line
	ahead chan struct{} // closed when the attempt ahead is done; nil if none
	done  chan struct{} // closed when this attempt and those ahead are done
}

// join puts an attempt in the line of the account, or of its client on
// the account (pair) if that has a pass, and in the IP's if the IP has
// failed, and returns its places. They are joined under one lock, so an
// attempt only ever waits for attempts that joined before it: the lines
// cannot wait on each other. A client's attempts with a pass thus skip
// those of others on the account, but still go one at a time.
func (a *Authenticator) join(keys [2]string, pair string, now time.Time) [2]place {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ps [2]place
	for i, key := range keys {
		if i == 1 && a.hasPass(pair, now) {
			key = pair
		}
		f := a.table.get(key, now)
		if i == 0 && (f == nil || f.count == 0) {
			continue // an IP without failures logs in side by side
		}
		if f == nil {
			f = a.table.add(key, now)
		}
		ps[i] = place{f: f, ahead: f.tail, done: make(chan struct{})}
		f.tail = ps[i].done
		f.inLine++
		a.table.touch(f)
	}
	return ps
}

// waitTurn waits until the attempts ahead are done, then for the delay
// that the failures of the IP and the account have earned by then
// (turnDelay). An attempt that waited in line and would in all wait
// past MaxDelay from start gets ErrThrottled as soon as that is
// certain; one that ctx ends first gets an error wrapping
// node.ErrUnavailable.
func (a *Authenticator) waitTurn(ctx context.Context, keys [2]string, pair string, ps [2]place, start time.Time) error {
	deadline := start.Add(a.cfg.MaxDelay)
	queued := false
	for _, p := range ps {
		if p.ahead == nil {
			continue
		}
		queued = true
		if err := waitClosed(ctx, p.ahead, deadline); err != nil {
			return err
		}
	}
	d := a.turnDelay(keys, pair)
	if queued && time.Now().Add(d).After(deadline) {
		return ErrThrottled
	}
	return sleepCtx(ctx, d)
}

// leave ends an attempt's places in line. The next attempt's turn comes
// when this one and every one ahead of it are done: one that gives up
// while waiting must not let the next check beside the one it waited
// for. A record with no failure and nobody in line is dropped, and the
// table is trimmed back to MaxTracked (throttleTable.trim).
func (a *Authenticator) leave(ps [2]place) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range ps {
		if p.f == nil {
			continue
		}
		passOn(p)
		if p.f.inLine--; p.f.inLine > 0 {
			continue
		}
		p.f.tail = nil
		a.table.touch(p.f)
	}
	a.table.trim(time.Now())
}

// passOn closes p.done once the attempt ahead is done.
func passOn(p place) {
	if p.ahead == nil {
		close(p.done)
		return
	}
	select {
	case <-p.ahead:
		close(p.done)
	default:
		go func() {
			<-p.ahead
			close(p.done)
		}()
	}
}

// turnDelay is the wait earned by the failures of the IP and the
// account, keys; the account's do not count while the client has a pass
// for it (pair). That is checked when the attempt's turn comes: once an
// attempt ahead of it in the pair's line has failed, it waits as long
// as any other.
func (a *Authenticator) turnDelay(keys [2]string, pair string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	d := a.delay(keys[0], now)
	if !a.hasPass(pair, now) {
		d = max(d, a.delay(keys[1], now))
	}
	return d
}

// hasPass reports whether the client has a pass for the account, pair
// their pairKey. a.mu is held.
func (a *Authenticator) hasPass(pair string, now time.Time) bool {
	p := a.table.get(pair, now)
	return p != nil && p.pass
}

// delay is the wait earned by key's failures: FailureDelay doubled per
// failure after the first, capped at MaxDelay. a.mu is held.
func (a *Authenticator) delay(key string, now time.Time) time.Duration {
	f := a.table.get(key, now)
	if f == nil || f.count == 0 {
		return 0
	}
	d := a.cfg.FailureDelay
	for i := 1; i < f.count && d < a.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, a.cfg.MaxDelay)
}

// fail counts a failure for each of keys.
func (a *Authenticator) fail(keys ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	for _, key := range keys {
		f := a.table.get(key, now)
		if f == nil {
			f = a.table.add(key, now)
		}
		f.count++
		f.last = now
		f.pass = false
		a.table.touch(f)
	}
}

// forgive takes the failures of one client on an account (pair, its
// pairKey) off the account's count after the client logged in: the
// owner's own typos are forgotten, while failures from elsewhere still
// count until Forget. If some are left, the pair gets a pass, so that
// the client's next logins to the account do not wait for them. The
// IP's count stays, as it did before. The account's record, which the
// attempt is in the line of unless it had a pass, goes when the line is
// empty and no failure is left (leave).
func (a *Authenticator) forgive(account, pair string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	p := a.table.get(pair, now)
	f := a.table.get(account, now)
	if p != nil && f != nil {
		f.count -= min(p.count, f.count)
		a.table.touch(f)
	}
	left := f != nil && f.count > 0
	if p == nil && left {
		p = a.table.add(pair, now)
	}
	if p != nil {
		p.count, p.pass, p.last = 0, left, now
		a.table.touch(p) // dropped without a pass, unless attempts are in its line
	}
}

// waitClosed waits until ch is closed. It returns ErrThrottled if that is
// after deadline, and an error wrapping node.ErrUnavailable if ctx ends
// first.
func waitClosed(ctx context.Context, ch <-chan struct{}, deadline time.Time) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-t.C:
		return ErrThrottled
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting for earlier logins: %w", node.ErrUnavailable, ctx.Err())
	}
}

// sleepCtx waits d, or fails with node.ErrUnavailable when ctx ends
// first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: waiting out login delays: %w", node.ErrUnavailable, ctx.Err())
	case <-t.C:
		return nil
	}
}
