package check

import (
	"sort"
	"strings"
)

// NameForwards is the outbound-queue checker's Result.Name.
const NameForwards = "forwards"

// Counts of CheckForwards that are violations.
const (
	CountFwdLost       = "lost"                   // acknowledged, never arrived at the remote
	CountFwdUnexpected = "unexpected"             // arrived, but no non-failed forward attempt could have sent it
	CountFwdDuplicate  = "unexplained_duplicates" // arrived twice with no lost acknowledgement or fault in between
	CountFwdNotSRS     = "not_srs"                // arrived with an envelope sender that is not SRS-rewritten
	CountFwdCorrupt    = "corrupt"                // arrived with a body or headers that are not what was sent
)

// FLeader is a harness event (negative Process): a poll of who leads the
// cluster, whose completion carries the leader's ID in Node ("" when none
// was known). Two consecutive polls of one process that disagree bound a
// leader change.
const FLeader = "leader"

// disturbances are the harness events after which the node working the
// outbound queue may lose an outcome it had not committed yet: the remote
// accepted, the commit of "sent" did not happen, the next worker sends
// again. The nemesis records each as an invocation and, as its next op,
// the heal.
var disturbances = map[string]bool{
	"kill": true, "pause": true, "partition": true, "slow": true, "member": true,
}

// forward summarises the attempts to forward one message to one remote
// recipient, and what the remote received.
type forward struct {
	attempts    int     // non-failed forward attempts
	firstInvoke int64   // earliest non-failed attempt invocation
	starts      []int64 // invocation times of the non-failed attempts
	acked       bool
	ackOp       int
	arrivals    []Call // sink receipts (OK or Info), in start order
}

// CheckForwards checks the outbound queue (issue 7's promise: a forward
// acknowledged with 250 reaches the remote, with an SRS-rewritten sender,
// at least once, and more than once only in the unavoidable case).
//
// Forward ops (FForward) are SMTP deliveries to addresses that forward to
// another provider: To lists the remote recipients, MsgID the message.
// Arrival ops (FArrive) are recorded by the remote server the cluster
// sends to: To the envelope recipients, From the envelope sender, MsgID
// the message's Message-ID, and an Error beginning "corrupt" when the
// message is not the one sent. An arrival completes OK when the remote
// answered 250, Info when it took the message and then dropped the
// connection without answering (a lost acknowledgement: the sender must
// retry), and Fail when it refused it (the message did not arrive).
//
// Violations: an acknowledged forward that never arrived (the harness
// must wait for the queue to drain before it stops recording); an arrival
// with no non-failed attempt invoked before it ended; a second arrival
// with neither a lost acknowledgement of an earlier one nor a disturbance
// (a fault, or a leader change) overlapping the time between them; a
// sender that is not SRS0/SRS1; a corrupt message.
func CheckForwards(h History, opts Options) Result {
	c := newCollector(NameForwards, opts, CountFwdLost, CountFwdUnexpected, CountFwdDuplicate, CountFwdNotSRS,
		CountFwdCorrupt, "attempted", "acknowledged", "arrived", "duplicated", "dup_after_lost_ack", "dup_after_fault",
		"refused_by_remote", "indeterminate_unsent")
	calls, err := Pair(h)
	if err != nil {
		return malformed(NameForwards, err)
	}
	fs := map[msgKey]*forward{}
	get := func(k msgKey) *forward {
		if fs[k] == nil {
			fs[k] = &forward{}
		}
		return fs[k]
	}
	var windows [][2]int64
	lastPoll := map[int]Call{}
	for i, call := range calls {
		switch {
		case call.Invoke.F == FForward:
			for _, rcpt := range call.Invoke.To {
				c.add("attempted", 1)
				get(msgKey{fold(rcpt), call.Invoke.MsgID}).addAttempt(call)
			}
		case call.Invoke.F == FArrive:
			checkArrival(c, call, get)
		case call.Invoke.Process < 0 && disturbances[call.Invoke.F]:
			windows = append(windows, disturbance(calls, i))
		case call.Invoke.Process < 0 && call.Invoke.F == FLeader && call.Type() == OK:
			if prev, ok := lastPoll[call.Invoke.Process]; ok && prev.Complete.Node != call.Complete.Node {
				windows = append(windows, [2]int64{prev.Start(), call.End()})
			}
			lastPoll[call.Invoke.Process] = call
		}
	}
	keys := make([]msgKey, 0, len(fs))
	for k := range fs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		checkForward(c, k, fs[k], windows)
	}
	return c.result()
}

func (f *forward) addAttempt(call Call) {
	if call.Type() == Fail {
		return
	}
	if f.attempts == 0 || call.Start() < f.firstInvoke {
		f.firstInvoke = call.Start()
	}
	f.attempts++
	f.starts = append(f.starts, call.Start())
	if call.Type() == OK && !f.acked {
		f.acked, f.ackOp = true, call.Complete.Index
	}
}

// checkArrival checks what can be judged from one receipt alone and files
// it under each of its recipients.
func checkArrival(c *collector, call Call, get func(msgKey) *forward) {
	done := call.Complete
	if call.Type() == Fail {
		c.add("refused_by_remote", 1)
		return
	}
	if strings.HasPrefix(done.Error, "corrupt") {
		c.violation(CountFwdCorrupt, "op %d: the remote received %s damaged: %s", done.Index, done.MsgID, done.Error)
	}
	from := strings.ToUpper(done.From)
	if !strings.HasPrefix(from, "SRS0=") && !strings.HasPrefix(from, "SRS1=") {
		c.violation(CountFwdNotSRS, "op %d: %s arrived from <%s>, not an SRS-rewritten sender", done.Index, done.MsgID, done.From)
	}
	for _, rcpt := range done.To {
		f := get(msgKey{fold(rcpt), done.MsgID})
		f.arrivals = append(f.arrivals, call)
	}
}

// disturbance is the time span of the fault calls[i]: from its
// invocation to the end of the same process's next op (the heal).
func disturbance(calls []Call, i int) [2]int64 {
	w := [2]int64{calls[i].Start(), calls[i].End()}
	for _, next := range calls[i+1:] {
		if next.Invoke.Process == calls[i].Invoke.Process {
			w[1] = max(w[1], next.End())
			return w
		}
	}
	w[1] = 1<<63 - 1 // never healed within the history
	return w
}

func checkForward(c *collector, k msgKey, f *forward, windows [][2]int64) {
	if f.acked {
		c.add("acknowledged", 1)
	}
	if len(f.arrivals) == 0 {
		switch {
		case f.acked:
			c.violation(CountFwdLost, "%s was acknowledged (op %d) and never reached the remote", k, f.ackOp)
		case f.attempts > 0:
			c.add("indeterminate_unsent", 1)
		}
		return
	}
	c.add("arrived", 1)
	first := f.arrivals[0]
	if f.attempts == 0 || first.End() < f.firstInvoke {
		c.violation(CountFwdUnexpected, "op %d: the remote received %s, which no non-failed forward attempt had sent",
			first.Complete.Index, k)
		return
	}
	sort.SliceStable(f.arrivals, func(i, j int) bool { return f.arrivals[i].Start() < f.arrivals[j].Start() })
	// Each attempt invoked before a copy arrived may legitimately have
	// brought one; beyond that every copy needs its own excuse: the
	// previous copy's acknowledgement was lost, or a disturbance overlapped
	// the time between them. A later attempt explains no earlier copy.
	for i := 1; i < len(f.arrivals); i++ {
		prev, dup := f.arrivals[i-1], f.arrivals[i]
		c.add("duplicated", 1)
		switch {
		case i < f.attemptsBy(dup.End()):
			continue
		case prev.Type() == Info:
			c.add("dup_after_lost_ack", 1)
			continue
		case overlaps(prev, dup, windows):
			c.add("dup_after_fault", 1)
			continue
		}
		c.violation(CountFwdDuplicate, "op %d: %s reached the remote again (first at op %d) with no lost acknowledgement or fault in between",
			dup.Complete.Index, k, prev.Complete.Index)
	}
}

// attemptsBy counts the non-failed attempts invoked by t.
func (f *forward) attemptsBy(t int64) int { return startedBy(f.starts, t) }

// overlaps reports whether a disturbance overlapped the time between
// two copies, which makes the second a possible resend of the first.
func overlaps(prev, dup Call, windows [][2]int64) bool {
	for _, w := range windows {
		if w[0] <= dup.Start() && w[1] >= prev.Start() {
			return true
		}
	}
	return false
}

func fold(addr string) string { return strings.ToLower(addr) }
