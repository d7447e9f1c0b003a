package jepsen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"powermail/jepsen/check"
)

// Config is one harness run.
type Config struct {
	Binary      string        // powermail binary; required
	ResultsDir  string        // history, faults, summary and node logs go here; required
	Nodes       int           // 3 (default) or 5
	Replicas    int           // R; default 2
	Time        time.Duration // how long the workload and nemesis run; default 60 s
	Faults      []FaultKind   // kinds the plan may use
	Plan        string        // "random" (default), "cycle" or "none"
	Seed        int64         // random plan, targets and workload choices
	Concurrency int           // SMTP clients; default 8
	Readers     int           // admin-API readers; default 1
	IMAPReaders int           // IMAP readers; default 2 (negative: none)
	FlagClients int           // IMAP flag clients; default 2 (negative: none)
	POP3Clients int           // POP3 clients; default 1 (negative: none)
	DirClients  int           // directory clients; default 2 (negative: none)
	// QueueClients forward mail to another provider through the outbound
	// queue; default 1 (negative: none, and no Remote is started).
	QueueClients int
	SelectReads  bool // flag reads re-SELECT instead of NOOP (see WorkloadConfig)
	// TolerateKnownBugs reports node crashes that match a known bug of
	// RESULTS.md (knownCrashes) as notes instead of failing the run.
	TolerateKnownBugs bool
	Mailboxes         int           // default 5
	Rate              float64       // deliveries per second over all clients; default 40, <0: unlimited
	OpTimeout         time.Duration // one SMTP transaction or read; default 10 s
	// Progress receives progress lines and the final summary; nil: quiet.
	Progress      io.Writer
	ProgressEvery time.Duration // default 5 s
}

func (c *Config) defaults() error {
	if c.Binary == "" || c.ResultsDir == "" {
		return errors.New("jepsen: Binary and ResultsDir are required")
	}
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.Replicas > c.Nodes {
		return fmt.Errorf("jepsen: %d replicas on %d nodes", c.Replicas, c.Nodes)
	}
	if c.Time == 0 {
		c.Time = 60 * time.Second
	}
	if c.Plan == "" {
		c.Plan = "random"
	}
	if c.Concurrency == 0 {
		c.Concurrency = 8
	}
	if c.Readers == 0 {
		c.Readers = 1
	}
	if c.Mailboxes == 0 {
		c.Mailboxes = 5
	}
	switch {
	case c.Rate == 0:
		c.Rate = 40
	case c.Rate < 0:
		c.Rate = 0
	}
	if c.OpTimeout == 0 {
		c.OpTimeout = 10 * time.Second
	}
	if c.ProgressEvery == 0 {
		c.ProgressEvery = 5 * time.Second
	}
	return nil
}

// ServerTuning are the server flags every node gets: redundancy upkeep,
// garbage collection and POP3 leases on the time scale of a run of
// minutes rather than days, so that faults exercise them. Raft snapshots
// its log every few seconds and keeps a short tail, so that a node wiped
// and joined again, or one long partitioned, catches up through a
// streamed state (a snapshot install) rather than the log.
var ServerTuning = []string{
	"--repair-interval", "3s", "--repair-grace", "10s", "--peer-poll-interval", "1s",
	"--gc-interval", "15s", "--gc-idle", "30s", "--maildrop-lease", "5s",
	"--auth-failure-delay", "10ms", "--auth-max-delay", "100ms",
	"--raft-snapshot-interval", "5s", "--raft-snapshot-threshold", "1024", "--raft-trailing-logs", "512",
}

// queueArgs send every node's outbound mail to the Remote at addr, with
// retries and a lease on the scale of seconds: a worker that dies
// mid-attempt hands its entries on after 10 s.
func queueArgs(addr string) []string {
	return []string{"--relay-host", addr, "--queue-lease", "10s", "--queue-retry-min", "1s", "--queue-retry-max", "5s"}
}

// Remote misbehaviour in a run: one message in ten is deferred with 451,
// one in twenty taken without an acknowledgement.
const (
	remoteTempFail = 0.10
	remoteDrop     = 0.05
)

// Report is the outcome of a run.
type Report struct {
	Plan    Plan
	Results []check.Result // set-full, uids, directory, flags, forwards, replication
	Ops     []OpCount
	Faults  []FaultWindow
	Skipped int     // plan steps skipped because the cluster was not healthy
	Crashes []Crash // node exits the harness did not cause
	// Problems are harness-level failures that make the run invalid
	// besides checker verdicts: no acknowledged delivery, a node that
	// crashed, final reads that never succeeded.
	Problems []string
	// Notes are known server bugs met during the run that were tolerated
	// (Config.TolerateKnownBugs).
	Notes   []string
	Valid   bool
	Files   []string // history.jsonl, faults.json, checks.json, summary.txt, latency.svg
	Elapsed time.Duration
	// Verify is the last "storage verify" after healing.
	Verify VerifyResult
	// ProxyConns and ProxyUnknown count peer connections through the
	// proxies and those whose dialing node was not identified.
	ProxyConns, ProxyUnknown int64
	// Memory is the nodes' peak and last resident memory, sampled with
	// every progress line.
	Memory string
}

// OpCount is the number of completions of one operation by type.
type OpCount struct {
	F                  string
	OK, Fail, Info, NA int // NA: invoked but never completed
}

// Run starts a cluster, runs the workload and the nemesis for cfg.Time,
// heals the cluster, reads every mailbox through every node, stops the
// cluster and checks the history. The returned error is for runs that could
// not be carried out (no binary, cluster did not start, interrupted); a run
// that found violations returns a Report with Valid false.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &testRun{cfg: cfg, began: time.Now(), out: cfg.Progress, rep: &Report{}}
	if r.out == nil {
		r.out = io.Discard
	}
	if err := os.MkdirAll(cfg.ResultsDir, 0o755); err != nil {
		return nil, err
	}
	plan, err := NewPlan(cfg.Plan, cfg.Faults, cfg.Seed, cfg.Time)
	if err != nil {
		return nil, err
	}
	r.rep.Plan = plan
	hf, err := os.Create(filepath.Join(cfg.ResultsDir, "history.jsonl"))
	if err != nil {
		return nil, err
	}
	defer hf.Close()
	r.rec = check.NewRecorder(hf)
	defer r.stop(context.WithoutCancel(ctx))
	if err := r.start(ctx, plan); err != nil {
		return nil, err
	}
	if err := r.load(ctx); err != nil {
		return nil, err
	}
	bodies, err := r.settle(ctx)
	if err != nil {
		return nil, err
	}
	return r.judge(ctx, bodies)
}

func progress(ctx context.Context, every time.Duration, logf func(string, ...any), s *Stats, nem *Nemesis, rss func() string) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fault := nem.Active()
		if fault == "" {
			fault = "none"
		}
		ofi := func(fs ...string) string {
			var o, f, i int
			for _, name := range fs {
				o, f, i = o+s.Get(name, check.OK), f+s.Get(name, check.Fail), i+s.Get(name, check.Info)
			}
			return fmt.Sprintf("%d/%d/%d", o, f, i)
		}
		logf("ok/fail/info: deliver %s, read %s, flags %s, pop-dele %s, dir %s, forward %s | faults done=%d, now: %s | rss %s",
			ofi(check.FDeliver), ofi(check.FRead), ofi(check.FStoreFlags, check.FReadFlags), ofi(check.FPopDele),
			ofi(check.FDirAdd, check.FDirRemove, check.FDirRead), ofi(check.FForward), len(nem.Windows()), fault, rss())
	}
}

func countOps(h check.History) []OpCount {
	calls, err := check.Pair(h)
	if err != nil {
		return nil
	}
	by := map[string]*OpCount{}
	for _, c := range calls {
		oc := by[c.Invoke.F]
		if oc == nil {
			oc = &OpCount{F: c.Invoke.F}
			by[c.Invoke.F] = oc
		}
		switch {
		case c.Pending:
			oc.NA++
		case c.Type() == check.OK:
			oc.OK++
		case c.Type() == check.Fail:
			oc.Fail++
		default:
			oc.Info++
		}
	}
	var out []OpCount
	for _, oc := range by {
		out = append(out, *oc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].F < out[j].F })
	return out
}

// Summary is the plain-text report: operations, faults, checker verdicts
// and the overall verdict.
func (r *Report) Summary() string {
	var b strings.Builder
	b.WriteString("OPERATIONS\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "F\tOK\tFAIL\tINFO\tPENDING")
	for _, o := range r.Ops {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", o.F, o.OK, o.Fail, o.Info, o.NA)
	}
	tw.Flush()

	kinds := map[FaultKind]int{}
	for _, f := range r.Faults {
		kinds[f.Kind]++
	}
	fmt.Fprintf(&b, "\nFAULTS (plan %s): %d injected", r.Plan.Name, len(r.Faults))
	for _, k := range AllFaults {
		if kinds[k] > 0 {
			fmt.Fprintf(&b, ", %s=%d", k, kinds[k])
		}
	}
	if r.Skipped > 0 {
		fmt.Fprintf(&b, ", %d skipped (cluster not healthy)", r.Skipped)
	}
	b.WriteString("\n")
	if len(r.Faults) > 0 {
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tNODE\tTARGET\tFROM\tTO\tWHOLE AFTER\tDETAIL")
		for _, f := range r.Faults {
			ready := "-"
			if f.Recovered > 0 {
				ready = fmt.Sprintf("%.1fs", float64(f.Recovered-f.End)/1e9)
			}
			detail := f.Detail
			if f.Error != "" {
				detail += " ERROR: " + f.Error
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fs\t%.1fs\t%s\t%s\n", f.Kind, f.Node, f.Target,
				float64(f.Start)/1e9, float64(f.End)/1e9, ready, detail)
		}
		tw.Flush()
	}
	if r.ProxyConns > 0 {
		fmt.Fprintf(&b, "peer connections through the proxies: %d (%d from an unidentified process)\n", r.ProxyConns, r.ProxyUnknown)
	}
	fmt.Fprintf(&b, "storage verify after healing: %d of %d bodies checked, %d short of R verified replicas\n",
		r.Verify.Done, r.Verify.Total, r.Verify.Short)
	if r.Memory != "" {
		b.WriteString(r.Memory + "\n")
	}
	b.WriteString("\nCHECKERS\n")
	b.WriteString(check.Summary(r.Results))
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "known bug, tolerated: %s\n", n)
	}
	verdict := "PASS"
	if !r.Valid {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "run: %s in %v\n", verdict, r.Elapsed.Round(100*time.Millisecond))
	for _, f := range r.Files {
		fmt.Fprintf(&b, "wrote %s\n", f)
	}
	return b.String()
}

// write stores faults.json, checks.json, latency.svg and summary.txt
// beside history.jsonl.
func (r *Report) write(cfg Config, h check.History) error {
	dir := cfg.ResultsDir
	r.Files = []string{filepath.Join(dir, "history.jsonl"), filepath.Join(dir, "faults.json"),
		filepath.Join(dir, "checks.json"), filepath.Join(dir, "summary.txt"), filepath.Join(dir, "latency.svg")}
	for _, res := range r.Results {
		r.Files = append(r.Files, res.Artifacts...)
	}
	if err := os.WriteFile(r.Files[4], LatencySVG(h, r.Faults), 0o644); err != nil {
		return err
	}
	faults := struct {
		Plan    Plan          `json:"plan"`
		Seed    int64         `json:"seed"`
		Windows []FaultWindow `json:"windows"`
		Skipped int           `json:"skipped,omitempty"`
		Crashes []Crash       `json:"crashes,omitempty"`
	}{r.Plan, cfg.Seed, r.Faults, r.Skipped, r.Crashes}
	if faults.Windows == nil {
		faults.Windows = []FaultWindow{}
	}
	raw, err := json.MarshalIndent(faults, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(r.Files[1], append(raw, '\n'), 0o644); err != nil {
		return err
	}
	checks := struct {
		Valid    bool           `json:"valid"`
		Results  []check.Result `json:"results"`
		Problems []string       `json:"problems,omitempty"`
		Notes    []string       `json:"known_bugs_tolerated,omitempty"`
		Verify   VerifyResult   `json:"storage_verify"`
	}{r.Valid, r.Results, r.Problems, r.Notes, r.Verify}
	if raw, err = json.MarshalIndent(checks, "", "  "); err != nil {
		return err
	}
	if err := os.WriteFile(r.Files[2], append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(r.Files[3], []byte(r.Summary()), 0o644)
}

// finalReadsBudget is how long the final reads may take in all. Their
// work grows with the mail the run delivered, which grows with its
// length: a 30-minute soak leaves mailboxes of 10,000 messages or more,
// and the first node to read one fetches every body.
func finalReadsBudget(run time.Duration) time.Duration {
	return max(90*time.Second, run/4)
}
