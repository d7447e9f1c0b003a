package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"powermail/fsm"
)

// The outbound queue worker. Entries live in the replicated state (see
// fsm/queue.go); this file sends them.
//
// Invariants:
//
//   - Only the leader leases entries, and an entry is worked only under a
//     lease committed through raft, so one node works it at a time. A
//     lease outlives the attempt's own deadline (AttemptTimeout < Lease),
//     so a slow attempt is cut off before another worker may begin.
//   - An outcome is committed after the remote server answered. A crash
//     between the remote's 250 and that commit makes the next worker send
//     again: a duplicate, never a loss (RFC 5321 §6.1 accepts this).
//   - An entry is removed (its body reference released) only after every
//     recipient is sent or has failed and its DSN is committed.
//   - No DSN is ever sent for a message with the null sender (RFC 5321
//     §4.5.5, RFC 3464 §2), so bounces cannot loop.

type outbound struct {
	holder   string
	kickCh   chan struct{}
	pool     *smtpPool
	slots    chan struct{} // Concurrency
	mu       sync.Mutex
	inflight map[string]bool
	again    map[string]bool // in flight and leased again meanwhile (workLeased)
	m        queueMetrics
	retries  *operatorRetries // queueretry.go
	paused   atomic.Bool      // benchmarks: fill the queue first, then drain
	// afterWork, tests only, is called as a worker has worked an entry,
	// before it lets go of it.
	afterWork atomic.Pointer[func(id string)]
}

func (q *outbound) kick() {
	if q == nil {
		return
	}
	select {
	case q.kickCh <- struct{}{}:
	default:
	}
}

func (n *Node) newOutbound() *outbound {
	if q := &n.cfg.Queue; q.AttemptTimeout < 2*(q.DialTimeout+q.GreetingTimeout) { // STARTTLS: two connections
		n.log.Warn("queue: an attempt ends before a silent server's greeting time, so such servers are never skipped; lengthen the lease or shorten the greeting timeout",
			"attempt", q.AttemptTimeout, "dial", q.DialTimeout, "greeting", q.GreetingTimeout)
	}
	return &outbound{holder: n.cfg.ID + "/" + deliveryID()[:8], kickCh: make(chan struct{}, 1), pool: newSMTPPool(n),
		slots: make(chan struct{}, n.cfg.Queue.Concurrency), inflight: map[string]bool{}, again: map[string]bool{},
		retries: newOperatorRetries(n.cfg.Queue.Lifetime)}
}

// queueLoop leases and works due entries while this node leads.
func (n *Node) queueLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.Queue.Interval)
	defer t.Stop()
	defer n.queue.pool.closeIdle()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.queue.kickCh:
		}
		if n.IsLeader() && !n.queue.paused.Load() {
			n.queueRound(ctx)
		}
		n.queue.pool.sweepIdle(time.Now())
	}
}

// queueRound leases one batch and starts a worker per entry. It leases
// no more entries than there are free workers: an entry leased to wait
// for one would spend its lease waiting, and one whose lease lapses
// before its attempt ends may be sent by the next leader as well.
func (n *Node) queueRound(ctx context.Context) {
	q := n.queue
	cfg := &n.cfg.Queue
	limit := min(cfg.Batch, cap(q.slots)-len(q.slots))
	if limit <= 0 {
		return // every worker is busy; the next tick looks again
	}
	now := time.Now().UnixMilli()
	// The lease would take what the leader's own state lists as due (the
	// same scan); with nothing there it would be an empty entry in the
	// log, and an fsync on every node, each interval. Mail enqueued here
	// or forwarded here is applied on this leader before its commit
	// returns, so the state read is not behind it.
	if due, err := n.state.QueueDue(now, 1); err == nil && len(due) == 0 {
		return
	}
	v, err := n.Apply(ctx, &fsm.QueueLease{Holder: q.holder, Now: now, TTL: cfg.Lease.Milliseconds(), Limit: limit})
	if err != nil {
		n.log.Warn("queue: lease failed", "err", err)
		return
	}
	var entries []fsm.QueueEntry
	if err := convert(v, &entries); err != nil {
		n.log.Error("queue: lease result", "err", err)
		return
	}
	for _, e := range entries {
		q.mu.Lock()
		busy := q.inflight[e.ID]
		q.inflight[e.ID] = true
		if busy { // its worker works it again (workLeased)
			q.again[e.ID] = true
		}
		q.mu.Unlock()
		if busy {
			continue
		}
		select {
		case q.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		n.bg.Add(1)
		go func() {
			defer n.bg.Done()
			n.workLeased(ctx, e)
			<-q.slots
			if len(entries) == limit {
				q.kick()
			}
		}()
	}
}

// workLeased works e, and works it again as often as a round leased it
// again meanwhile: it came due before its worker was done with it (a
// given-back entry is due within moments, while its worker may still
// send a notice). Skipped as one in flight, such an entry kept its new
// lease, and so no round took it, until that lapsed.
func (n *Node) workLeased(ctx context.Context, e fsm.QueueEntry) {
	q := n.queue
	for ours := true; ; {
		if ours {
			n.workEntry(ctx, e)
		}
		if hook := q.afterWork.Load(); hook != nil {
			(*hook)(e.ID)
		}
		q.mu.Lock()
		again := q.again[e.ID]
		delete(q.again, e.ID)
		if !again {
			delete(q.inflight, e.ID)
		}
		q.mu.Unlock()
		if !again {
			return
		}
		// The round's lease is applied here: it returned before it
		// marked the entry. Gone, or released by this worker's own
		// last update, there is nothing to work.
		cur, err := n.state.QueueGet(e.ID)
		if ours = err == nil && cur.LeaseHolder == q.holder; ours {
			e = cur
		}
	}
}

// workEntry makes one attempt at e's pending recipients and records it.
// An attempt that reached no server, its destinations all busy or
// marked down, is given back uncounted.
func (n *Node) workEntry(ctx context.Context, e fsm.QueueEntry) {
	if pending := e.Pending(); len(pending) > 0 {
		run := &attemptRun{operator: n.queue.retries.take(e)}
		actx, cancel := context.WithTimeout(ctx, n.cfg.Queue.AttemptTimeout)
		all := n.attempt(actx, e, pending, run)
		cancel()
		outcomes, busy, down := n.splitSkipped(all)
		var ok bool
		switch {
		case len(outcomes) == 0 && busy > 0:
			e, ok = n.giveBack(ctx, e, n.busyDue(e, run.busy.t), "its destination is busy")
		case len(outcomes) == 0 && down > 0:
			e, ok = n.giveBack(ctx, e, n.downDue(e, run.down.t), "its destination is marked down")
		default:
			e, ok = n.recordAttempt(ctx, e, outcomes, busy, run.busy.t)
		}
		if !ok {
			return
		}
	}
	if err := n.finishEntry(ctx, e, time.Now()); err != nil {
		n.log.Warn("queue: finishing entry", "id", e.ID, "err", err)
	}
}

// recordAttempt commits an attempt's outcomes, and returns the entry as
// it is then; busy recipients (their destination had no connection free)
// make the entry due again at back, when their destination should have
// room, instead of after its backoff, unless a server deferred some of
// the others: the entry has one schedule, and a deferring server is not
// asked again every time the busy one has room.
func (n *Node) recordAttempt(ctx context.Context, e fsm.QueueEntry, outcomes []fsm.RcptOutcome, busy int, back time.Time) (fsm.QueueEntry, bool) {
	upd := &fsm.QueueUpdate{ID: e.ID, Holder: n.queue.holder, Outcomes: outcomes, Attempted: true,
		NextAttempt: time.Now().Add(n.backoff(e.Attempts + 1)).UnixMilli()}
	deferred := slices.ContainsFunc(outcomes, func(o fsm.RcptOutcome) bool { return o.Outcome == fsm.OutcomeTemp })
	if busy > 0 && !deferred { // the rest go when their destination has room
		upd.NextAttempt = n.busyDue(e, back)
	}
	for _, o := range outcomes {
		if o.Outcome != fsm.OutcomeSent {
			upd.LastError = o.Error
		}
		n.countOutcome(o.Outcome)
	}
	// A record cut off by a leader change is proposed again: if the
	// first one was lost, the lease would lapse and the message be
	// sent again, though the remote took it. Recording the same
	// outcomes twice changes nothing but the attempt count, so a
	// repeat first looks whether the record took.
	var v any
	tries := 0
	err := n.untilKnown(ctx, "queue: recording an attempt", e.ID, func(ctx context.Context) (err error) {
		if tries++; tries > 1 {
			if cur, gerr := n.state.QueueGet(e.ID); gerr == nil && cur.Attempts > e.Attempts {
				v = cur
				return nil
			}
		}
		v, err = n.Apply(ctx, upd)
		return err
	})
	if err != nil {
		n.log.Warn("queue: recording an attempt failed; the lease will lapse", "id", e.ID, "err", err)
		return e, false
	}
	n.logOutcomes(ctx, e, outcomes, e.Attempts+1)
	if err := convert(v, &e); err != nil {
		return e, false
	}
	n.notifyRelayed(ctx, e, outcomes)
	return e, true
}

// logOutcomes logs each recipient's outcome of an attempt (number
// attempt) once it is recorded, one line each as an MTA logs a
// delivery, so that the log tells where a forwarded message went, or
// why not (sent, temp: tried again later, perm: bounced). A bounce is
// logged at WARN: the mail is lost to that recipient and its sender
// gets a failure notice, which an administrator watching the warnings
// wants to see. A delivery and a deferral, which the queue tries again,
// are the routine of a mail queue: INFO.
func (n *Node) logOutcomes(ctx context.Context, e fsm.QueueEntry, outcomes []fsm.RcptOutcome, attempt int) {
	for _, o := range outcomes {
		level := slog.LevelInfo
		if o.Outcome == fsm.OutcomePerm {
			level = slog.LevelWarn
		}
		n.log.Log(ctx, level, "queue: recipient", "id", e.ID, "rcpt", o.Address, "outcome", o.Outcome, "attempt", attempt, "reply", o.Error)
	}
}

// outcomeBusy marks the recipients of a destination host that had no
// connection free (busydest.go). It is never recorded: workEntry takes
// them out (splitBusy) and has the entry come back when the host should
// have room.
const outcomeBusy = "busy"

// splitSkipped returns the outcomes other than outcomeBusy and
// outcomeDown (hostdown.go), and how many of each there were.
func (n *Node) splitSkipped(all []fsm.RcptOutcome) (out []fsm.RcptOutcome, busy, down int) {
	for _, o := range all {
		switch o.Outcome {
		case outcomeBusy:
			busy++
		case outcomeDown:
			down++
		default:
			out = append(out, o)
			continue
		}
		n.countOutcome(o.Outcome)
	}
	return out, busy, down
}

// giveBack ends the lease of an entry whose destinations were all
// skipped (why), due again at due and without counting an attempt:
// nothing was sent, and its backoff must not grow while others' mail
// goes first. A record that fails is not repeated (a repeat could end a
// newer lease of this node's); the lease then lapses.
func (n *Node) giveBack(ctx context.Context, e fsm.QueueEntry, due int64, why string) (fsm.QueueEntry, bool) {
	upd := &fsm.QueueUpdate{ID: e.ID, Holder: n.queue.holder, NextAttempt: due}
	v, err := n.Apply(ctx, upd)
	if err != nil {
		n.log.Warn("queue: giving back an entry failed; the lease will lapse", "id", e.ID, "why", why, "err", err)
		return e, false
	}
	return e, convert(v, &e) == nil
}

// busyDue is when e, given back at back for a busy destination, is due
// again: never past the end of its lifetime, when its failure notice is
// owed (finishEntry), however long the host's line.
func (n *Node) busyDue(e fsm.QueueEntry, back time.Time) int64 {
	return min(back.UnixMilli(), e.Created+n.cfg.Queue.Lifetime.Milliseconds())
}

// notifyFailedEarly reports, while other recipients of e are still
// pending, the recipients that failed for good and were not reported
// yet: a sender should not wait days to hear of a mistyped address
// because another recipient's server is slow. The notice is named by the
// recipients it reports (a retry stores it once), and they are marked,
// so the entry's final notice leaves them out. A cluster below
// EncodingJSON3 cannot record the mark and reports all at the end.
func (n *Node) notifyFailedEarly(ctx context.Context, e *fsm.QueueEntry, now time.Time) error {
	if e.From == "" {
		return nil
	}
	if s, err := n.state.Settings(); err != nil || s.CommandEncoding < fsm.EncodingJSON3 {
		return err
	}
	var fresh []fsm.QueueRecipient
	var names []string
	for _, r := range e.Recipients {
		if r.State == fsm.RcptFailed && !r.Notified {
			fresh = append(fresh, r)
			names = append(names, r.Address)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	rep := queueReport(*e, fresh, dsnFailed, fsm.NotifyFailure)
	rep.id = reportID(e.ID, names)
	if err := n.sendDSN(ctx, rep, now); err != nil {
		return err
	}
	v, err := n.Apply(ctx, &fsm.QueueUpdate{ID: e.ID, FailNotified: names, NextAttempt: n.noticeNextAttempt(e)})
	if err != nil {
		return err
	}
	return convert(v, e)
}

// noticeNextAttempt is the NextAttempt of a notice's update of e, which
// means to record the notice, not to reschedule: from command encoding
// 12 zero, which apply takes as "unchanged" (fsm.QueueUpdate), so that
// an operator's retry committed since e was read stands; below 12 e's
// own, which apply writes back as releases before 12 do.
func (n *Node) noticeNextAttempt(e *fsm.QueueEntry) int64 {
	if n.encodingAtLeast(fsm.EncodingJSON12) {
		return 0
	}
	return e.NextAttempt
}

// backoff is the wait before attempt k+1: exponential from RetryMin,
// capped at RetryMax, with ±20 % jitter so entries spread out.
func (n *Node) backoff(attempts int) time.Duration {
	cfg := &n.cfg.Queue
	d := cfg.RetryMin
	for i := 1; i < attempts && d < cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, cfg.RetryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// finishEntry expires, bounces, warns and removes as e's state requires.
func (n *Node) finishEntry(ctx context.Context, e fsm.QueueEntry, now time.Time) error {
	cfg := &n.cfg.Queue
	age := now.Sub(time.UnixMilli(e.Created))
	if !e.Done() && age >= cfg.Lifetime {
		upd := &fsm.QueueUpdate{ID: e.ID, Holder: n.queue.holder, NextAttempt: e.NextAttempt}
		for _, r := range e.Pending() {
			upd.Outcomes = append(upd.Outcomes, fsm.RcptOutcome{Address: r, Outcome: fsm.OutcomePerm,
				Error: fmt.Sprintf("4.4.7 delivery time expired after %v; last error: %s", cfg.Lifetime, e.LastError)})
		}
		v, err := n.Apply(ctx, upd)
		if err != nil {
			return err
		}
		// Expiry bounces them as a refusal would, though no attempt
		// was made: attempt names the last one.
		n.logOutcomes(ctx, e, upd.Outcomes, e.Attempts)
		if err := convert(v, &e); err != nil {
			return err
		}
	}
	if !e.Done() {
		if err := n.notifyFailedEarly(ctx, &e, now); err != nil {
			return err
		}
	}
	if e.Done() {
		var failed []fsm.QueueRecipient
		for _, r := range e.Recipients {
			if r.State == fsm.RcptFailed && !r.Notified {
				failed = append(failed, r)
			}
		}
		if len(failed) > 0 && e.From != "" {
			if err := n.sendDSN(ctx, queueReport(e, failed, dsnFailed, fsm.NotifyFailure), now); err != nil {
				return err
			}
		}
		_, err := n.Apply(ctx, &fsm.QueueRemove{ID: e.ID})
		return err
	}
	if cfg.DelayNotify > 0 && !e.DelayNotified && age >= cfg.DelayNotify && e.From != "" {
		var pending []fsm.QueueRecipient
		for _, r := range e.Recipients {
			if r.State == fsm.RcptPending {
				pending = append(pending, r)
			}
		}
		if err := n.sendDSN(ctx, queueReport(e, pending, dsnDelayed, fsm.NotifyDelay), now); err != nil {
			return err
		}
		_, err := n.Apply(ctx, &fsm.QueueUpdate{ID: e.ID, DelayNotified: true, NextAttempt: n.noticeNextAttempt(&e)})
		return err
	}
	return nil
}

// attempt sends e to its pending recipients, one transaction per
// recipient domain (or one through the relay), and reports each.
// The recipients of skipped destinations (outcomeBusy, outcomeDown) have
// the latest time those gave to come back at noted in run.
func (n *Node) attempt(ctx context.Context, e fsm.QueueEntry, pending []string, run *attemptRun) []fsm.RcptOutcome {
	all := func(outcome, msg string) []fsm.RcptOutcome {
		return outcomesOf(outcome, msg, pending)
	}
	hops, own, err := n.countHops(ctx, e.Hash)
	if err != nil {
		return all(fsm.OutcomeTemp, "4.3.0 body unavailable: "+err.Error())
	}
	if hops > n.cfg.Queue.MaxHops || own > 2*n.cfg.Queue.MaxOwnHops {
		// RFC 5321 §6.3: a looping message is refused, not passed on.
		return all(fsm.OutcomePerm, fmt.Sprintf("5.4.6 mail loop detected (%d Received fields, %d ours)", hops, own))
	}
	groups := map[string][]string{}
	var order []string
	for _, r := range pending {
		key := ""
		if n.cfg.Queue.RelayHost == "" {
			key = strings.ToLower(r[strings.LastIndexByte(r, '@')+1:])
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], r)
	}
	// The domains go at once (at most groupsAtOnce), so that a slow or
	// silent one spends the attempt's deadline for itself only.
	results := make([][]fsm.RcptOutcome, len(order))
	sem := make(chan struct{}, groupsAtOnce)
	var wg sync.WaitGroup
	for i, key := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = n.sendGroup(ctx, e, key, groups[key], run)
		})
	}
	wg.Wait()
	return slices.Concat(results...)
}

// attemptRun is what the transactions of one attempt share: whether an
// operator's retry asked for it (queueretry.go), and the latest times
// their skipped destinations gave to come back at: a busy host when it
// should have room (busydest.go), a host marked down when the mark
// lapses (hostdown.go).
type attemptRun struct {
	operator   bool
	busy, down latest
}

// latest collects the latest of the times noted.
type latest struct {
	mu sync.Mutex
	t  time.Time
}

func (b *latest) note(t time.Time) {
	b.mu.Lock()
	if t.After(b.t) {
		b.t = t
	}
	b.mu.Unlock()
}

// groupsAtOnce bounds the domains one attempt sends to at the same time.
const groupsAtOnce = 8

// countHops reads the header section of a body and counts its Received
// fields, and those that name this cluster.
func (n *Node) countHops(ctx context.Context, hash string) (all, own int, err error) {
	rd, err := n.openBody(ctx, hash)
	if err != nil {
		return 0, 0, err
	}
	defer rd.Close()
	br := bufio.NewReader(io.LimitReader(rd, 1<<20))
	mark := "by " + strings.ToLower(n.cfg.Queue.Hostname) + " "
	var field strings.Builder
	flush := func() {
		f := strings.ToLower(field.String())
		if strings.HasPrefix(f, "received:") {
			all++
			if strings.Contains(f, mark) {
				own++
			}
		}
		field.Reset()
	}
	for {
		line, rerr := br.ReadString('\n')
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "" || rerr != nil {
			flush()
			if rerr != nil && rerr != io.EOF {
				return 0, 0, rerr
			}
			return all, own, nil
		}
		if line[0] != ' ' && line[0] != '\t' {
			flush()
		}
		field.WriteString(trimmed)
		field.WriteByte(' ')
	}
}

// sendGroup runs one SMTP transaction for rcpts of one domain, trying
// the route's hosts in order until one answers. When every host was
// skipped, marked down, the recipients' outcome is outcomeDown.
func (n *Node) sendGroup(ctx context.Context, e fsm.QueueEntry, domain string, rcpts []string, run *attemptRun) []fsm.RcptOutcome {
	outcomes := outcomesOf
	rt, err := n.routeFor(ctx, domain)
	if err != nil {
		if errors.Is(err, ErrNullMX) {
			return outcomes(fsm.OutcomePerm, "5.1.10 "+err.Error(), rcpts)
		}
		if errors.Is(err, ErrNoSuchDomain) { // RFC 3463: bad destination system address
			return outcomes(fsm.OutcomePerm, "5.1.2 "+err.Error(), rcpts)
		}
		return outcomes(fsm.OutcomeTemp, "4.4.3 "+err.Error(), rcpts)
	}
	lastErr := "4.4.1 no mail server reachable"
	tried := false
	for _, host := range rt.hosts {
		pc, err := n.queue.pool.get(ctx, host, rt.relay, run.operator)
		if be := (*busyError)(nil); errors.As(err, &be) {
			// Not the next MX (RFC 5321 §5.1 orders them by preference,
			// and the host is up): the entry is given back (workEntry).
			run.busy.note(be.until)
			return outcomes(outcomeBusy, "4.4.5 "+err.Error(), rcpts)
		}
		if de := (*hostDownError)(nil); errors.As(err, &de) {
			run.down.note(de.again(time.Now(), n.cfg.Queue.RetryMax))
			lastErr = "4.4.1 " + err.Error()
			continue
		}
		tried = true
		if err != nil {
			lastErr = "4.4.1 " + err.Error()
			continue
		}
		out, connErr := n.transact(ctx, pc, e, rcpts)
		n.queue.pool.put(pc, connErr == nil)
		if out != nil {
			return out
		}
		lastErr = "4.4.2 " + connErr.Error()
	}
	if !tried && len(rt.hosts) > 0 {
		return outcomes(outcomeDown, lastErr, rcpts)
	}
	return outcomes(fsm.OutcomeTemp, lastErr, rcpts)
}

// transact runs MAIL, RCPT and DATA on one connection. It returns nil
// outcomes when the connection failed before the server took
// responsibility for anything (try the next host), and connErr when the
// connection must not be reused.
func (n *Node) transact(ctx context.Context, pc *pooledClient, e fsm.QueueEntry, rcpts []string) (out []fsm.RcptOutcome, connErr error) {
	stop := closeOnDone(ctx, pc.conn) // a cancelled attempt cuts the connection
	defer func() {
		if !stop() && connErr == nil { // cut meanwhile: never back to the pool
			connErr = fmt.Errorf("%w: attempt ended", ErrNoRoute)
		}
	}()
	from := n.srsForward(e.From, n.srsDomain(), e.Submitted, time.Now())
	offered, _ := pc.c.Extension("SMTPUTF8")
	useUTF8, rcpts, out := n.utf8Plan(ctx, e, offered, from, rcpts)
	if len(rcpts) == 0 {
		return out, nil
	}
	// DSN parameters go on only to a server that offers DSN (go-smtp
	// drops them otherwise); then it, not us, reports success.
	opts := &smtp.MailOptions{Size: e.Size, EnvelopeID: e.EnvID, Return: smtp.DSNReturn(e.Ret), UTF8: useUTF8}
	if err := completed(pc.c.Mail(wireAddress(from), opts)); err != nil {
		o, cerr := replyOutcomes(err, rcpts)
		if o == nil {
			return nil, cerr
		}
		return append(out, o...), cerr
	}
	accepted, over, out, cerr := n.sendRcpts(pc, e, rcpts, out)
	if cerr != nil {
		return nil, cerr
	}
	if len(accepted) == 0 {
		return out, nil
	}
	out, connErr = n.sendData(ctx, pc, e, accepted, out)
	if connErr != nil && len(out) == 0 {
		// Lost at DATA with no outcome yet: the server took nothing, and
		// the recipients past its limit must not stand for all of them.
		return nil, connErr
	}
	if connErr != nil || len(over) == 0 || !sentAll(out, accepted) {
		return append(out, over...), connErr
	}
	// RFC 5321 §4.5.3.1.10: the recipients past the server's limit go in
	// a new transaction at once, since this one made progress.
	more, connErr := n.transact(ctx, pc, e, addresses(over))
	if more == nil {
		more = over // the connection failed before anything: as deferred
	}
	return append(out, more...), connErr
}

// sendRcpts sends RCPT for each of rcpts, after a MAIL was taken. It
// returns the recipients the server accepted, the outcomes of those it
// deferred for its recipient limit (not asked once the limit showed), and
// out with every other recipient's outcome added; cerr when the
// connection failed.
func (n *Node) sendRcpts(pc *pooledClient, e fsm.QueueEntry, rcpts []string, out []fsm.RcptOutcome) (accepted []string, over, _ []fsm.RcptOutcome, cerr error) {
	for i, r := range rcpts {
		err := completed(pc.c.Rcpt(wireAddress(r), rcptDSN(e, r)))
		if err == nil {
			accepted = append(accepted, r)
			continue
		}
		err = rcptReply(err)
		o, cerr := replyOutcomes(err, []string{r})
		if cerr != nil {
			return nil, nil, nil, cerr
		}
		if len(accepted) > 0 && tooManyRecipients(err) {
			text := o[0].Error
			return accepted, outcomesOf(fsm.OutcomeTemp, text, rcpts[i:]), out, nil
		}
		out = append(out, o...)
	}
	return accepted, nil, out, nil
}

// tooManyRecipients reports a RCPT reply that means the server's
// recipient limit for one transaction (RFC 5321 §4.5.3.1.10, RFC 3463
// X.5.3), as rcptReply made it: 452, with 4.5.3 or no enhanced code.
// go-smtp's client reads a reply without one as the zero code, not
// smtp.NoEnhancedCode (a server without ENHANCEDSTATUSCODES, RFC 2034).
func tooManyRecipients(err error) bool {
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 452 {
		return false
	}
	switch se.EnhancedCode {
	case smtp.NoEnhancedCode, smtp.EnhancedCode{}, smtp.EnhancedCode{4, 5, 3}:
		return true
	}
	return false
}

// sentAll reports whether every one of rcpts has a sent outcome in out.
func sentAll(out []fsm.RcptOutcome, rcpts []string) bool {
	for _, r := range rcpts {
		if !slices.ContainsFunc(out, func(o fsm.RcptOutcome) bool { return o.Address == r && o.Outcome == fsm.OutcomeSent }) {
			return false
		}
	}
	return true
}

func addresses(out []fsm.RcptOutcome) []string {
	a := make([]string, len(out))
	for i, o := range out {
		a[i] = o.Address
	}
	return a
}

// sendData sends DATA, the message and the final dot for the accepted
// recipients, with their outcomes added to out.
func (n *Node) sendData(ctx context.Context, pc *pooledClient, e fsm.QueueEntry, accepted []string, out []fsm.RcptOutcome) ([]fsm.RcptOutcome, error) {
	w, err := pc.c.Data()
	if err != nil {
		o, cerr := replyOutcomes(err, accepted)
		if o == nil && len(out) > 0 {
			// Some recipients have outcomes, so no other host is tried
			// (sendGroup): the ones taken at RCPT get theirs too. With
			// none, the caller tries the next host.
			o = outcomesOf(fsm.OutcomeTemp, "4.4.2 "+cerr.Error(), accepted)
		}
		return append(out, o...), cerr
	}
	sendErr := n.writeMessage(ctx, w, e, accepted)
	if sendErr != nil {
		// RFC 5321 §4.1.1.4: without the final dot the server takes nothing.
		return append(out, outcomesOf(fsm.OutcomeTemp, "4.3.0 "+sendErr.Error(), accepted)...), sendErr
	}
	if err := completed(w.Close()); err != nil {
		// A connection lost after the dot may hide a 250: the retry can
		// duplicate, never lose.
		o, cerr := replyOutcomes(err, accepted)
		if o == nil {
			o = outcomesOf(fsm.OutcomeTemp, "4.4.2 "+cerr.Error(), accepted)
		}
		return append(out, o...), cerr
	}
	sent := "250 accepted by " + pc.host
	if ok, _ := pc.c.Extension("DSN"); !ok {
		sent += noDSNNote
	}
	return append(out, outcomesOf(fsm.OutcomeSent, sent, accepted)...), nil
}

// writeMessage sends our Received: stamp (RFC 5321 §4.4) and the stored
// message, headers intact.
func (n *Node) writeMessage(ctx context.Context, w io.Writer, e fsm.QueueEntry, rcpts []string) error {
	sig, err := n.dkimSignature(ctx, e)
	if err != nil {
		return err
	}
	rd, err := n.openBody(ctx, e.Hash)
	if err != nil {
		return err
	}
	defer rd.Close()
	stamp := "Received: by " + n.cfg.Queue.Hostname + " (PowerMail) with ESMTP id " + e.ID
	if len(rcpts) == 1 {
		stamp += "\r\n\tfor <" + SMTPPath(rcpts[0]) + ">"
	}
	stamp += ";\r\n\t" + time.Now().Format(time.RFC1123Z) + "\r\n" + sig
	if _, err := io.WriteString(w, stamp); err != nil {
		return err
	}
	br := bufio.NewReader(rd)
	if err := skipReturnPath(br); err != nil {
		return err
	}
	var msg io.Reader = br
	if sig != "" {
		msg = newHeaderEnded(br) // as it was signed
	}
	_, err = io.Copy(w, msg)
	return err
}

// skipReturnPath drops the Return-Path field the frontend put first on
// receipt: it belongs to final delivery, and a message sent on must not
// carry one (RFC 5321 §4.4).
func skipReturnPath(br *bufio.Reader) error {
	head, _ := br.Peek(len("Return-Path:"))
	if !strings.EqualFold(string(head), "Return-Path:") {
		return nil
	}
	_, err := br.ReadString('\n')
	return err
}

// replyOutcomes classifies an SMTP error for rcpts. A reply from the
// server is an outcome (4xx temporary, 5xx permanent); anything else is a
// connection failure, returned as connErr with nil outcomes.
func replyOutcomes(err error, rcpts []string) ([]fsm.RcptOutcome, error) {
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code < 400 {
		return nil, err
	}
	// A multi-line reply (RFC 5321 §4.2.1) is one text: its lines come
	// joined by "\n", which would stand in the queue's records and show
	// as '?' in a notice (asciiOnly), gluing words and URLs together.
	text := strings.ReplaceAll(se.Message, "\n", " ")
	msg := fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], text)
	if se.EnhancedCode == smtp.NoEnhancedCode || se.EnhancedCode[0] == 0 {
		msg = fmt.Sprintf("%d %s", se.Code, text)
	}
	if se.Code >= 500 {
		return outcomesOf(fsm.OutcomePerm, msg, rcpts), nil
	}
	return outcomesOf(fsm.OutcomeTemp, msg, rcpts), nil
}

// completed is err, a server's answer to a command, or nil when that
// answer is a positive completion reply other than the one go-smtp
// expects (it takes only 250 to MAIL and to the final dot, 25x to RCPT).
// RFC 5321 §4.2.1: a client must take an unrecognised reply by its first
// digit, and 2yz is success. Taken for a failure, a message a server took
// with a 251 was sent again at every retry and bounced at the end.
func completed(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 200 && se.Code < 300 {
		return nil
	}
	return err
}

// rcptReply is err, a server's answer to RCPT, with a 552 read as 452.
// RFC 5321 §4.5.3.1.10: RFC 821 gave "too many recipients" the code 552,
// which servers still use; the right one is 452, and a client SHOULD
// take a 552 here as temporary, so that the recipients past the server's
// limit go in a later transaction instead of bouncing. (552 to MAIL or
// after the data, "message too big", stays permanent.)
func rcptReply(err error) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 {
		return err
	}
	tmp := *se
	tmp.Code = 452
	if tmp.EnhancedCode != smtp.NoEnhancedCode && tmp.EnhancedCode[0] == 5 {
		tmp.EnhancedCode[0] = 4
	}
	return &tmp
}

// maxErrorText bounds the error recorded per recipient (and so in the
// raft log, the entry's last error and any bounce): a server's reply is
// the server's to word, at whatever length.
const maxErrorText = 512

func outcomesOf(outcome, msg string, rcpts []string) []fsm.RcptOutcome {
	if len(msg) > maxErrorText {
		msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "..."
	}
	out := make([]fsm.RcptOutcome, len(rcpts))
	for i, r := range rcpts {
		out[i] = fsm.RcptOutcome{Address: r, Outcome: outcome, Error: msg}
	}
	return out
}
