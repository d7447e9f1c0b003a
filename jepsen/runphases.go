package jepsen

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"powermail/jepsen/check"
)

// testRun is one run's parts, shared by its phases: start, load, settle
// and judge.
type testRun struct {
	cfg    Config
	began  time.Time
	out    io.Writer
	rec    *check.Recorder
	remote *Remote // nil without queue clients
	c      *Cluster
	w      *Workload
	nem    *Nemesis
	mem    *memWatch
	rep    *Report

	stopWatch func() // ends the leader polls, and waits for them
}

func (r *testRun) logf(format string, args ...any) {
	fmt.Fprintf(r.out, "[%6.1fs] %s\n", time.Since(r.began).Seconds(), fmt.Sprintf(format, args...))
}

// start brings up the remote MX (with queue clients), the cluster, the
// workload's mailboxes and the nemesis.
func (r *testRun) start(ctx context.Context, plan Plan) error {
	cfg := r.cfg
	args := slices.Clone(ServerTuning)
	if cfg.QueueClients >= 0 {
		remote, err := StartRemote(r.rec, RemoteConfig{TempFail: remoteTempFail, Drop: remoteDrop, Seed: cfg.Seed})
		if err != nil {
			return err
		}
		r.remote = remote
		args = append(args, queueArgs(remote.Addr)...)
	}
	r.logf("starting %d nodes (R=%d) in %s", cfg.Nodes, cfg.Replicas, cfg.ResultsDir)
	c, err := StartCluster(ctx, ClusterConfig{Binary: cfg.Binary, Dir: cfg.ResultsDir, Nodes: cfg.Nodes,
		Replicas: cfg.Replicas, ServerArgs: args, Logf: r.logf})
	if err != nil {
		return err
	}
	r.c = c
	w := NewWorkload(c, r.rec, WorkloadConfig{Mailboxes: cfg.Mailboxes, Concurrency: cfg.Concurrency,
		Readers: cfg.Readers, IMAPReaders: cfg.IMAPReaders, FlagClients: cfg.FlagClients,
		POP3Clients: cfg.POP3Clients, DirClients: cfg.DirClients, QueueClients: cfg.QueueClients,
		SelectReads: cfg.SelectReads, Rate: cfg.Rate, OpTimeout: cfg.OpTimeout, Seed: cfg.Seed})
	if err := w.Setup(ctx); err != nil {
		return err
	}
	r.w = w
	nem := NewNemesis(c, r.rec, plan, cfg.Seed, r.logf)
	nem.Mailboxes = w.Mailboxes()[:cfg.Mailboxes]
	nem.Probe = func(ctx context.Context, n *Node, mailbox string, uid uint32, hash string) {
		w.ProbeIMAP(ctx, n, mailbox, uid, hash)
		w.Fetch(ctx, n, mailbox, uid, hash)
	}
	nem.Verify = func(ctx context.Context, budget time.Duration) error {
		_, err := c.WaitRedundant(ctx, budget)
		return err
	}
	r.nem = nem
	r.logf("running %v: %d SMTP clients, %d admin, %d IMAP readers, %d flag, %d POP3, %d directory, %d forwarding clients, %d mailboxes, plan %q with faults %v, seed %d",
		cfg.Time, w.cfg.Concurrency, w.cfg.Readers, w.cfg.IMAPReaders, w.cfg.FlagClients, w.cfg.POP3Clients,
		w.cfg.DirClients, w.cfg.QueueClients, cfg.Mailboxes, plan.Name, cfg.Faults, cfg.Seed)
	return nil
}

// stop ends what start began, whatever phase failed.
func (r *testRun) stop(ctx context.Context) {
	if r.stopWatch != nil {
		r.stopWatch()
	}
	if r.c != nil {
		r.c.Stop(ctx)
	}
	if r.remote != nil {
		r.remote.Close()
	}
}

// load runs the workload and the nemesis for the configured time, and
// waits for the operations in flight.
func (r *testRun) load(ctx context.Context) error {
	// Leader polls run until the queue has drained: a leader change while
	// it drains may excuse a duplicate too.
	watchCtx, cancelWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		if r.remote != nil {
			r.w.watchLeader(watchCtx, 250*time.Millisecond)
		}
	}()
	r.stopWatch = func() { cancelWatch(); <-watchDone }

	runCtx, cancel := context.WithTimeout(ctx, r.cfg.Time)
	defer cancel()
	nemDone, wlDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(nemDone)
		r.nem.Run(runCtx)
	}()
	go func() {
		defer close(wlDone)
		r.w.Run(runCtx)
	}()
	r.mem = newMemWatch()
	progress(runCtx, r.cfg.ProgressEvery, r.logf, r.w.Stats(), r.nem, func() string { return r.mem.sample(r.c.Nodes()) })
	<-nemDone
	r.logf("load stopped; waiting for operations in flight")
	// Every operation has a deadline; a client still busy long after is
	// stuck, and the run goes on without it (its op stays pending, which
	// the checkers treat as indeterminate) instead of hanging.
	select {
	case <-wlDone:
	case <-time.After(3*r.cfg.OpTimeout + 30*time.Second):
		r.problem("a workload client was still busy long after its deadline (stuck)")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	return nil
}

func (r *testRun) problem(p string) { r.rep.Problems = append(r.rep.Problems, p) }

// settle heals the cluster, reads every mailbox through every node,
// drains the outbound queue, waits for every body to reach R verified
// copies, and returns where each acknowledged body is.
func (r *testRun) settle(ctx context.Context) ([]check.BodyReplicas, error) {
	r.logf("healing the cluster")
	if err := r.c.Heal(ctx, 60*time.Second); err != nil {
		r.problem("cluster did not heal: " + err.Error())
	}
	r.logf("final reads: %d mailboxes through each of %d nodes", len(r.w.Mailboxes()), r.cfg.Nodes)
	fctx, fcancel := context.WithTimeout(ctx, finalReadsBudget(r.cfg.Time))
	err := r.w.FinalReads(fctx)
	fcancel()
	if err != nil {
		r.problem(err.Error())
	}
	if r.remote != nil {
		r.logf("waiting for the outbound queue to drain to the remote")
		if err := r.w.DrainForwards(ctx, r.remote, 90*time.Second); err != nil {
			r.problem(err.Error())
		}
	}
	r.stopWatch()
	r.logf("verifying redundancy: storage verify until every body has R verified replicas")
	rep := r.rep
	if rep.Verify, err = r.c.WaitRedundant(ctx, max(120*time.Second, r.cfg.Time/4)); err != nil {
		r.problem("storage verify: " + err.Error())
	}
	if rep.Verify.Short > int64(len(rep.Verify.ShortBodies)) {
		r.problem(fmt.Sprintf("storage verify: %d bodies short, only %d named", rep.Verify.Short, len(rep.Verify.ShortBodies)))
	}
	hashes := r.w.Hashes()
	r.logf("replication: looking up the replicas of %d bodies", len(hashes))
	bodies, problems := r.c.Replicas(ctx, hashes, rep.Verify.ShortBodies)
	rep.Problems = append(rep.Problems, problems...)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("interrupted: %w", err)
	}
	rep.ProxyConns, rep.ProxyUnknown = r.c.Net.Connections()
	rep.Memory = r.mem.summary()
	return bodies, nil
}

// judge stops the cluster, runs the checkers over the history and the
// replicas, and writes the report.
func (r *testRun) judge(ctx context.Context, bodies []check.BodyReplicas) (*Report, error) {
	r.c.Stop(ctx)
	rep := r.rep
	h := r.rec.History()
	r.logf("checking %d operations", len(h))
	opts := check.Options{VisualizeDir: r.cfg.ResultsDir, Timeout: 2 * time.Minute}
	rep.Results = append(check.CheckAll(h, opts), check.CheckReplication(bodies, opts))
	rep.Ops = countOps(h)
	rep.Faults = r.nem.Windows()
	rep.Skipped = r.nem.Skipped()
	rep.Crashes = r.c.Crashes()
	for _, cr := range rep.Crashes {
		msg := fmt.Sprintf("node %s exited unexpectedly: %s (see its log)", cr.Node, cr.Err)
		if cr.Known != "" {
			msg = fmt.Sprintf("node %s crashed with %s of RESULTS.md: %s (see its log)", cr.Node, cr.Known, cr.Err)
		}
		if cr.Known != "" && r.cfg.TolerateKnownBugs {
			rep.Notes = append(rep.Notes, msg)
		} else {
			r.problem(msg)
		}
	}
	if r.w.Stats().Get(check.FDeliver, check.OK) == 0 {
		r.problem("no delivery was acknowledged")
	}
	rep.Valid = check.AllValid(rep.Results) && len(rep.Problems) == 0
	rep.Elapsed = time.Since(r.began)
	if err := rep.write(r.cfg, h); err != nil {
		return rep, err
	}
	fmt.Fprint(r.out, "\n"+rep.Summary())
	return rep, nil
}
