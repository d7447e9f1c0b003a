// Command imapload is an IMAP and POP3 load generator for comparing mail
// stores: N parallel sessions, spread over one or more servers, run a
// weighted mix of commands (SELECT, FETCH of headers over a range, FETCH
// of one whole message, STORE +FLAGS/-FLAGS, UID SEARCH, APPEND; or POP3
// STAT/LIST/UIDL/TOP/RETR) for a fixed time or number of operations, and
// it reports per command the operations per second, the count, the errors
// and latency percentiles. --prefill first tops the mailbox up to N
// messages of realistic sizes, several sessions in parallel.
//
// Errors are counted and the session goes on (or reconnects when the
// connection broke); they never end the run.
//
//	imapload --imap 127.0.0.1:1143,127.0.0.1:1144 --user demo@example.com \
//	    --password demo-password --plain-auth-ok --prefill 10000 --mode fetch
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"
)

// account is one login.
type account struct{ user, pass string }

type config struct {
	imapAddrs, pop3Addrs []string
	accounts             []account
	mailbox              string
	mode                 string
	mix                  []mixEntry
	sessions             int
	duration             time.Duration
	ops                  int64
	fetchRange           int
	appendSize           int
	prefill              int
	prefillSessions      int
	prefillSize          int
	pop3PerSession       int
	plainOK              bool
	warm                 bool
	progress             time.Duration
	seed                 uint64
	label                string
	jsonPath             string
	hashPassword         string
}

// listFlag collects a repeatable, comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func main() {
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "imapload:", err)
		os.Exit(2)
	}
	if c.hashPassword != "" {
		h, err := argon2idHash(c.hashPassword)
		if err != nil {
			fmt.Fprintln(os.Stderr, "imapload:", err)
			os.Exit(1)
		}
		fmt.Println(h)
		return
	}
	// Ctrl-C ends the run early; the results so far are still printed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep := run(ctx, c)
	if c.jsonPath != "-" {
		rep.writeTable(os.Stdout)
	}
	if c.jsonPath != "" {
		raw, _ := json.MarshalIndent(rep, "", "  ")
		raw = append(raw, '\n')
		if c.jsonPath == "-" {
			os.Stdout.Write(raw)
		} else if err := os.WriteFile(c.jsonPath, raw, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "imapload:", err)
			os.Exit(1)
		}
	}
	if (c.duration > 0 || c.ops > 0) && rep.Total.Count == 0 {
		fmt.Fprintln(os.Stderr, "imapload: no operation succeeded")
		os.Exit(3)
	}
}

func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("imapload", flag.ContinueOnError)
	var imapAddrs, pop3Addrs listFlag
	fs.Var(&imapAddrs, "imap", "IMAP server host:port (repeatable or comma-separated; sessions are spread over them)")
	fs.Var(&pop3Addrs, "pop3", "POP3 server host:port (repeatable or comma-separated), for --mode pop3")
	user := fs.String("user", "", "login name")
	pass := fs.String("password", "", "password (for --user, and for every --users pattern user)")
	users := fs.String("users", "", `more logins: a pattern with %d such as "user%d@example.com" (with --users-count), or a file of "user password" lines`)
	usersCount := fs.Int("users-count", 0, "number of users a --users pattern expands to (user1 .. userN)")
	fs.StringVar(&c.mailbox, "mailbox", "INBOX", "IMAP mailbox to use")
	fs.StringVar(&c.mode, "mode", "mixed", "workload: mixed, fetch, search or pop3 (sets the default --mix)")
	mix := fs.String("mix", "", "command weights, e.g. fetchhdr=30,fetchbody=30,search=10 (IMAP: select fetchhdr fetchbody store search append noop; POP3: stat list uidl top retr noop)")
	fs.IntVar(&c.sessions, "sessions", 8, "parallel sessions")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "measured run time (0: no limit, then --ops must be set)")
	fs.Int64Var(&c.ops, "ops", 0, "stop after this many operations in all (0: no limit)")
	fs.IntVar(&c.fetchRange, "fetch-range", 20, "messages per FETCH of headers")
	fs.IntVar(&c.appendSize, "append-size", 4096, "size in bytes of messages APPENDed during the run")
	fs.IntVar(&c.prefill, "prefill", 0, "before the run, APPEND to every user's mailbox until it holds this many messages")
	fs.IntVar(&c.prefillSessions, "prefill-sessions", 8, "parallel sessions for --prefill")
	fs.IntVar(&c.prefillSize, "prefill-size", 0, "size of prefilled messages (0: a realistic mix of 2 KiB to 256 KiB, mean about 17 KiB)")
	fs.IntVar(&c.pop3PerSession, "pop3-ops-per-session", 50, "POP3 commands per session before QUIT and a new login")
	fs.BoolVar(&c.plainOK, "plain-auth-ok", false, "log in without TLS (otherwise STARTTLS/STLS first; certificates are not verified)")
	fs.BoolVar(&c.warm, "warm", false, "before the run, fetch the header fields FETCH_HDR asks for of every message, once through every target")
	fs.DurationVar(&c.progress, "progress", 5*time.Second, "progress line interval on stderr (0: none)")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed (the prefilled messages depend only on it)")
	fs.StringVar(&c.label, "label", "", "name of the system under test, printed with the results")
	fs.StringVar(&c.jsonPath, "json", "", `also write the results as JSON to this file ("-": JSON on stdout instead of the table)`)
	fs.StringVar(&c.hashPassword, "hash-password", "", "only print an argon2id hash of this password with PowerMail's default cost and exit (for a reference server's password file)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.hashPassword != "" {
		return c, nil
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.imapAddrs, c.pop3Addrs = imapAddrs, pop3Addrs
	var err error
	if c.accounts, err = loadAccounts(*user, *pass, *users, *usersCount); err != nil {
		return nil, err
	}
	preset, ok := presets[c.mode]
	if !ok {
		return nil, fmt.Errorf("unknown --mode %q (mixed, fetch, search, pop3)", c.mode)
	}
	if *mix != "" {
		preset = *mix
	}
	allowed := imapOps
	if c.mode == "pop3" {
		allowed = pop3Ops
	}
	if c.mix, err = parseMix(preset, allowed); err != nil {
		return nil, err
	}
	switch {
	case c.sessions < 1:
		return nil, errors.New("--sessions must be at least 1")
	case c.duration < 0 || c.ops < 0:
		return nil, errors.New("--duration and --ops must not be negative")
	case c.fetchRange < 1:
		return nil, errors.New("--fetch-range must be at least 1")
	case c.appendSize < 256:
		return nil, errors.New("--append-size must be at least 256")
	case c.prefillSize != 0 && c.prefillSize < 256:
		return nil, errors.New("--prefill-size must be 0 or at least 256")
	case c.prefillSessions < 1:
		return nil, errors.New("--prefill-sessions must be at least 1")
	case c.pop3PerSession < 1:
		return nil, errors.New("--pop3-ops-per-session must be at least 1")
	}
	measured := c.duration > 0 || c.ops > 0
	if (c.prefill > 0 || (measured && c.mode != "pop3")) && len(c.imapAddrs) == 0 {
		return nil, errors.New("--imap is required (for --prefill and the IMAP modes)")
	}
	if measured && c.mode == "pop3" && len(c.pop3Addrs) == 0 {
		return nil, errors.New("--pop3 is required for --mode pop3")
	}
	return c, nil
}

// loadAccounts builds the login list from --user/--password and --users.
func loadAccounts(user, pass, users string, count int) ([]account, error) {
	var out []account
	if user != "" {
		out = append(out, account{user, pass})
	}
	switch {
	case users == "":
	case strings.Contains(users, "%d"):
		if count < 1 {
			return nil, errors.New("a --users pattern needs --users-count")
		}
		for i := 1; i <= count; i++ {
			out = append(out, account{fmt.Sprintf(users, i), pass})
		}
	default:
		raw, err := os.ReadFile(users)
		if err != nil {
			return nil, err
		}
		more, err := parseUsersFile(string(raw), pass)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", users, err)
		}
		out = append(out, more...)
	}
	if len(out) == 0 {
		return nil, errors.New("give --user or --users")
	}
	return out, nil
}

// parseUsersFile reads "user password" (or "user:password") lines; a line
// with a user only takes defPass. Blank lines and # comments are skipped.
func parseUsersFile(text, defPass string) ([]account, error) {
	var out []account
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, p, ok := strings.Cut(line, " ")
		if !ok {
			u, p, ok = strings.Cut(line, "\t")
		}
		if !ok {
			u, p, ok = strings.Cut(line, ":")
		}
		if !ok {
			p = defPass
		}
		u, p = strings.TrimSpace(u), strings.TrimSpace(p)
		if u == "" {
			return nil, fmt.Errorf("line %d: no user", n+1)
		}
		out = append(out, account{u, p})
	}
	return out, nil
}

// counters feed the progress line.
type counters struct{ ok, errs atomic.Int64 }

// run does the prefill, then the measured phase, and returns the report.
func run(ctx context.Context, c *config) *report {
	rep := &report{Label: c.label, Mode: c.mode, Sessions: c.sessions, Targets: c.imapAddrs}
	if c.mode == "pop3" {
		rep.Targets = c.pop3Addrs
	}
	if c.prefill > 0 {
		p := prefill(ctx, c)
		rep.Prefill = &p
		fmt.Fprintf(os.Stderr, "prefill: %d users had %d..%d messages; appended %d (%.1f MB) in %.1f s, %.0f msgs/s, %d errors\n",
			len(c.accounts), p.MinBefore, p.MaxBefore, p.Appended, float64(p.Bytes)/1e6, p.Seconds, p.Rate, p.Errors)
	}
	if c.warm && c.mode != "pop3" {
		if err := warm(c); err != nil {
			fmt.Fprintf(os.Stderr, "imapload: %v\n", err)
			os.Exit(1) // a cold run reported as a warm one would mislead
		}
	}
	if c.duration == 0 && c.ops == 0 {
		rep.Mode = "prefill"
		return rep
	}
	var budget atomic.Int64 // operations handed out so far
	take := func() bool { return c.ops == 0 || budget.Add(1) <= c.ops }

	var cnt counters
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ph := &phase{}
	recs := make([]*recorder, c.sessions)
	setup := make([]*recorder, c.sessions)
	setupCtx, cancelSetup := context.WithCancel(ctx)
	defer cancelSetup()
	for i := 0; i < c.sessions; i++ {
		recs[i], setup[i] = newRecorder(), newRecorder()
		ready.Add(1)
		done.Add(1)
		w := &worker{id: i, c: c, acct: c.accounts[i%len(c.accounts)], rec: recs[i], setup: setup[i],
			cnt: &cnt, take: take, ph: ph}
		go func() {
			defer done.Done()
			if c.mode == "pop3" {
				w.addr = c.pop3Addrs[i%len(c.pop3Addrs)]
				w.runPOP3(setupCtx, &ready, start)
			} else {
				w.addr = c.imapAddrs[i%len(c.imapAddrs)]
				w.runIMAP(setupCtx, &ready, start)
			}
		}()
	}
	ready.Wait()
	// The phase is set before start is closed, so the workers see it.
	t0 := time.Now()
	ph.parent, ph.ctx, ph.hard = ctx, ctx, ctx
	if c.duration > 0 {
		// Commands in flight at the deadline may finish; a grace period
		// later the workers close their connections, so that a hung
		// server cannot hold the run.
		var stop, stopHard context.CancelFunc
		ph.ctx, stop = context.WithDeadline(ctx, t0.Add(c.duration))
		ph.hard, stopHard = context.WithDeadline(ctx, t0.Add(c.duration+hardGrace))
		defer stop()
		defer stopHard()
	}
	close(start)
	stopProgress := progress(c.progress, c.sessions, &cnt, t0)
	done.Wait()
	stopProgress()
	el := time.Since(t0)

	all, su := newRecorder(), newRecorder()
	for i := range recs {
		all.merge(recs[i])
		su.merge(setup[i])
	}
	rep.fill(all, su, el)
	return rep
}

// progress prints a line every interval until the returned func is called.
func progress(every time.Duration, sessions int, cnt *counters, t0 time.Time) func() {
	if every <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				n := cnt.ok.Load()
				fmt.Fprintf(os.Stderr, "  %5.0fs %d sessions: %d ops (%.0f/s), %d errors\n",
					time.Since(t0).Seconds(), sessions, n, float64(n-last)/every.Seconds(), cnt.errs.Load())
				last = n
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// argon2idHash hashes pw in PHC form with the cost PowerMail gives new
// passwords (fsm/password.go: m=19456 KiB, t=2, p=1), so that a reference
// server checks logins at the same cost.
func argon2idHash(pw string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	const mem, iter, threads = 19 * 1024, 2, 1
	key := argon2.IDKey([]byte(pw), salt, iter, mem, threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, mem, iter, threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}
