// Command jepsen runs PowerMail's fault-injection harness: a cluster of
// real powermail processes behind partitionable proxies, a nemesis (kill
// -9, SIGSTOP, partitions, slow links, remove and re-join, body
// corruption), SMTP, IMAP, POP3 and directory clients through random
// nodes, a final read through every node, a storage verification, and the
// set-full, UID, linearizability and replication checkers. See
// jepsen/README.md.
//
// Exit status: 0 when every checker passed, 1 on a violation or when no
// delivery was acknowledged, 2 when the run could not be carried out, 130
// when interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"powermail/jepsen"
)

func main() {
	os.Exit(run())
}

func run() int {
	defTime, defFaults := 60*time.Second, "all"
	if v := os.Getenv("JEPSEN_TIME"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "jepsen: JEPSEN_TIME=%q: %v\n", v, err)
			return 2
		}
		defTime = d
	}
	if v, ok := os.LookupEnv("JEPSEN_FAULTS"); ok {
		defFaults = v
	}
	var (
		cfg    jepsen.Config
		faults string
	)
	flag.StringVar(&cfg.Binary, "bin", "", "powermail binary (default: build one into the results directory)")
	flag.StringVar(&cfg.ResultsDir, "results", "", "results directory (default: results/<time>-seed<N>)")
	flag.IntVar(&cfg.Nodes, "nodes", 3, "cluster size (3 or 5)")
	flag.IntVar(&cfg.Replicas, "replicas", 2, "body replicas R (and write quorum W)")
	flag.DurationVar(&cfg.Time, "time", defTime, "how long to run load and faults (env JEPSEN_TIME)")
	flag.StringVar(&faults, "faults", defFaults, "fault kinds, comma-separated: "+jepsen.FaultNames()+"; all or none (env JEPSEN_FAULTS)")
	flag.StringVar(&cfg.Plan, "plan", "random", "fault plan: "+strings.Join(jepsen.PlanNames, ", "))
	flag.Int64Var(&cfg.Seed, "seed", 0, "seed for the plan and the workload (default: from the clock, printed)")
	flag.IntVar(&cfg.Concurrency, "concurrency", 8, "SMTP clients")
	flag.IntVar(&cfg.Readers, "readers", 1, "clients listing mailboxes through the admin API")
	flag.IntVar(&cfg.IMAPReaders, "imap-readers", 2, "clients reading mailboxes over IMAP (-1: none)")
	flag.IntVar(&cfg.FlagClients, "flag-clients", 2, "IMAP clients appending messages and storing flags (-1: none)")
	flag.IntVar(&cfg.POP3Clients, "pop3-clients", 1, "POP3 clients retrieving and deleting (-1: none)")
	flag.IntVar(&cfg.DirClients, "dir-clients", 2, "clients adding, removing and reading mailboxes and forwards (-1: none)")
	flag.IntVar(&cfg.QueueClients, "queue-clients", 1, "clients forwarding mail to another provider through the outbound queue (-1: none)")
	flag.BoolVar(&cfg.SelectReads, "select-reads", false, "flag reads re-SELECT instead of NOOP (avoids known bug 1 in jepsen/RESULTS.md)")
	flag.BoolVar(&cfg.TolerateKnownBugs, "tolerate-known-bugs", false, "report node crashes matching a known bug of jepsen/RESULTS.md without failing the run")
	flag.IntVar(&cfg.Mailboxes, "mailboxes", 5, "mailboxes to deliver to")
	flag.Float64Var(&cfg.Rate, "rate", 40, "target deliveries per second over all clients (-1: unlimited)")
	flag.DurationVar(&cfg.OpTimeout, "op-timeout", 10*time.Second, "deadline of one client operation")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "jepsen: unexpected arguments %q\n", flag.Args())
		return 2
	}
	var err error
	if cfg.Faults, err = jepsen.ParseFaults(faults); err != nil {
		fmt.Fprintln(os.Stderr, "jepsen:", err)
		return 2
	}
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano() % 1_000_000_000
	}
	if cfg.ResultsDir == "" {
		cfg.ResultsDir = filepath.Join("results", fmt.Sprintf("%s-seed%d", time.Now().Format("20060102-150405"), cfg.Seed))
	}
	cfg.Progress = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.Binary == "" {
		fmt.Println("building powermail ...")
		if cfg.Binary, err = jepsen.BuildBinary(ctx, cfg.ResultsDir); err != nil {
			fmt.Fprintln(os.Stderr, "jepsen:", err)
			return 2
		}
	}
	fmt.Printf("jepsen: seed %d (rerun with --seed %d --plan %s --faults %s --time %v)\n",
		cfg.Seed, cfg.Seed, cfg.Plan, faults, cfg.Time)
	rep, err := jepsen.Run(ctx, cfg)
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "jepsen: interrupted")
		return 130
	case err != nil && rep == nil:
		fmt.Fprintln(os.Stderr, "jepsen:", err)
		return 2
	case err != nil:
		fmt.Fprintln(os.Stderr, "jepsen: writing results:", err)
		return 2
	}
	if !rep.Valid {
		return 1
	}
	return 0
}
