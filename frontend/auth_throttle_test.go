package frontend_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"powermail/frontend"
	"powermail/node"
)

// countingChecker counts the password checks that reach the store.
type countingChecker struct {
	frontend.PasswordChecker
	checks atomic.Int32
}

func (c *countingChecker) Authenticate(ctx context.Context, user, password string) (node.Login, error) {
	c.checks.Add(1)
	return c.PasswordChecker.Authenticate(ctx, user, password)
}

// throttleAuth is an Authenticator over a fake with one account, and
// the counter of its checks.
func throttleAuth(t *testing.T, failureDelay, maxDelay time.Duration) (*frontend.Authenticator, *countingChecker) {
	t.Helper()
	f := newPOP3Fake()
	f.addUser(pop3User, "secret")
	store := &countingChecker{PasswordChecker: f}
	return frontend.NewAuthenticator(store, frontend.AuthConfig{
		FailureDelay: failureDelay,
		MaxDelay:     maxDelay,
	}, slog.New(slog.DiscardHandler)), store
}

// parallelLogins runs n logins to pop3User at once, each from an address
// of its own (so only the account's record can slow them), and returns
// their errors.
func parallelLogins(a *frontend.Authenticator, n int, password string) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, errs[i] = a.Login(ctx, fmt.Sprintf("192.0.2.%d", i+1), pop3User, password, true)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// Wrong passwords sent for one account all at once, from as many
// addresses, wait as long in all as they would one after the other: the
// second waits FailureDelay, the third twice that, and so on. Before, they
// all waited the delay of the failures counted when they started (here
// none), so parallelism bought an attacker as many guesses as connections.
// Parallel logins with the right password to an account without
// failures are only as slow as their checks, and the right password
// still logs in after the failures (after their delay: a success from
// another address does not forgive them, TestIMAPLoginSuccessForgivesOnlyItsOwnClient).
func TestLoginThrottleSerialisesParallelAttempts(t *testing.T) {
	const (
		n     = 6
		delay = 20 * time.Millisecond
	)
	a, store := throttleAuth(t, delay, 10*time.Second)
	begin := time.Now()
	for i, err := range parallelLogins(a, 8, "secret") {
		if err != nil {
			t.Errorf("parallel right password %d: %v", i, err)
		}
	}
	if elapsed := time.Since(begin); elapsed > time.Second {
		t.Errorf("8 parallel right passwords took %v, want about their checks", elapsed)
	}
	store.checks.Store(0)

	// One at a time: 0, 1, 2, 4, 8, 16 delays.
	var sum time.Duration
	for i := 1; i < n; i++ {
		sum += delay << (i - 1)
	}

	begin = time.Now()
	errs := parallelLogins(a, n, "wrong")
	elapsed := time.Since(begin)
	for i, err := range errs {
		if !errors.Is(err, node.ErrAuthFailed) {
			t.Errorf("attempt %d: %v, want ErrAuthFailed", i, err)
		}
	}
	if got := store.checks.Load(); got != n {
		t.Errorf("%d password checks, want %d", got, n)
	}
	if elapsed < sum {
		t.Errorf("%d parallel wrong passwords took %v; one at a time they wait %v", n, elapsed, sum)
	}

	// Six failures earned a delay of 32 x 20 ms; then the right password
	// logs in.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if login, err := a.Login(ctx, "198.51.100.1", pop3User, "secret", true); err != nil || login.Address != pop3User {
		t.Fatalf("right password after failures: %+v, %v", login, err)
	}
}

// Attempts that would wait past MaxDelay in all are refused without a
// check (ErrThrottled, which is temporary), so a burst against one account
// gets no more checks per MaxDelay than attempts one at a time would.
func TestLoginThrottleRefusesWhatWouldWaitPastMaxDelay(t *testing.T) {
	const n = 10
	a, store := throttleAuth(t, 200*time.Millisecond, 400*time.Millisecond)
	reg := prometheus.NewRegistry()
	if err := a.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}

	// The first check runs at once and the second after 200 ms; a third
	// would wait for the second and then 400 ms: past MaxDelay.
	throttled := 0
	for i, err := range parallelLogins(a, n, "wrong") {
		switch {
		case errors.Is(err, frontend.ErrThrottled):
			throttled++
			if !errors.Is(err, node.ErrUnavailable) {
				t.Errorf("attempt %d: ErrThrottled does not wrap node.ErrUnavailable", i)
			}
		case !errors.Is(err, node.ErrAuthFailed):
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	// A third check would need a scheduling delay of over 200 ms.
	if got := store.checks.Load(); got > 3 || throttled < n-3 {
		t.Errorf("%d checks and %d throttled of %d parallel attempts, want 2 checks", got, throttled, n)
	}
	if got, err := counterValue(reg, "powermail_logins_total", map[string]string{"result": "throttled"}); err != nil || int(got) != throttled {
		t.Errorf("throttled logins counted %v (%v), want %d", got, err, throttled)
	}
}

// slowChecker refuses every password, taking as long for each user as
// it says.
type slowChecker map[string]time.Duration

func (c slowChecker) Authenticate(ctx context.Context, user, password string) (node.Login, error) {
	time.Sleep(c[user])
	return node.Login{}, fmt.Errorf("slow checker: %w", node.ErrAuthFailed)
}

// The floor under a failure's answer counts from its password check, not
// from its arrival: from one IP that has failed before, each attempt
// first waits the delay it earned, and a floor from arrival would be
// over before the check began, so the check's cost would show again on
// every attempt but the first. Here a check of 80 ms and one of none
// are told apart by neither.
func TestLoginRepeatFailuresHideTheCheck(t *testing.T) {
	const delay = 120 * time.Millisecond
	store := slowChecker{"costly@example.com": 80 * time.Millisecond}
	a := frontend.NewAuthenticator(store, frontend.AuthConfig{FailureDelay: delay, MaxDelay: delay},
		slog.New(slog.DiscardHandler))
	login := func(user string) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := a.Login(ctx, "192.0.2.1", user, "guess", true)
		return time.Since(start), err
	}
	if _, err := login("first@example.com"); !errors.Is(err, node.ErrAuthFailed) {
		t.Fatalf("first failure: %v", err)
	}
	users := []string{"costly@example.com", "cheap@example.com"}
	fastest := map[string]time.Duration{}
	for range 3 {
		for _, user := range users {
			d, err := login(user)
			if !errors.Is(err, node.ErrAuthFailed) {
				t.Fatalf("%s: %v, want ErrAuthFailed", user, err)
			}
			if d < 2*delay {
				t.Errorf("%s: a repeat failure answered after %v, before its earned delay and the floor (%v)", user, d, 2*delay)
			}
			if f, ok := fastest[user]; !ok || d < f {
				fastest[user] = d
			}
		}
	}
	if gap := (fastest[users[0]] - fastest[users[1]]).Abs(); gap > 40*time.Millisecond {
		t.Errorf("repeat failures answered after %v: the 80 ms check shows", fastest)
	}
}

// A failure waits out its floor after leaving the account's line: two
// wrong passwords at once take two delays (the second checks after the
// delay the first earned, then waits its floor), not three, as they
// would if the first held its place while it waited.
func TestLoginFailureFloorDoesNotHoldTheLine(t *testing.T) {
	const delay = 300 * time.Millisecond
	a, store := throttleAuth(t, delay, 10*time.Second)
	begin := time.Now()
	for i, err := range parallelLogins(a, 2, "wrong") {
		if !errors.Is(err, node.ErrAuthFailed) {
			t.Errorf("attempt %d: %v, want ErrAuthFailed", i, err)
		}
	}
	elapsed := time.Since(begin)
	if got := store.checks.Load(); got != 2 {
		t.Errorf("%d password checks, want 2", got)
	}
	if elapsed < 2*delay || elapsed > 5*delay/2 {
		t.Errorf("two parallel wrong passwords took %v, want about %v", elapsed, 2*delay)
	}
}

// The floor ends with the connection (its ctx); the right password is
// answered at once, however long the floor.
func TestLoginFailureFloorEndsWithTheContext(t *testing.T) {
	a, _ := throttleAuth(t, 10*time.Second, 20*time.Second)
	start := time.Now()
	if _, err := a.Login(context.Background(), "192.0.2.1", pop3User, "secret", true); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the right password answered after %v", d)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := a.Login(ctx, "192.0.2.1", pop3User, "wrong", true); !errors.Is(err, node.ErrAuthFailed) {
		t.Errorf("wrong password: %v, want ErrAuthFailed", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a failure whose ctx ended after 100 ms answered after %v", d)
	}
}

// An IPv6 client's failures count for its whole /84 (node.ClientKey): a next attempt
// from another address of it, on another account, waits the delay they
// earned; one from another /84 does not.
func TestLoginFailuresCountAnIPv6ClientByItsPrefix(t *testing.T) {
	const delay = 300 * time.Millisecond
	store := slowChecker{}
	a := frontend.NewAuthenticator(store, frontend.AuthConfig{FailureDelay: delay, MaxDelay: 10 * delay},
		slog.New(slog.DiscardHandler))
	login := func(ip, user string) time.Duration {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := a.Login(ctx, ip, user, "guess", true); !errors.Is(err, node.ErrAuthFailed) {
			t.Fatalf("%s %s: %v", ip, user, err)
		}
		return time.Since(start)
	}
	login("2001:db8:1:2::1", "a@example.com")
	if d := login("2001:db8:1:2::99", "b@example.com"); d < 2*delay {
		t.Errorf("another address of the /84 that failed answered after %v, before its earned delay and the floor", d)
	}
	if d := login("2001:db8:1:3::1", "c@example.com"); d >= 2*delay {
		t.Errorf("another /84 answered after %v, as if it had failed", d)
	}
}
