package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"powermail/jepsen/check"
)

// FaultKind is one kind of fault the nemesis injects.
type FaultKind string

// Fault kinds available today.
const (
	FaultKill  FaultKind = "kill"  // SIGKILL, then restart after Hold
	FaultPause FaultKind = "pause" // SIGSTOP, then SIGCONT after Hold
)

// AllFaults lists every fault kind, in the order plans use them.
var AllFaults = []FaultKind{FaultKill, FaultPause}

// ParseFaults reads a comma-separated list of fault kinds ("kill,pause").
// "all" means every kind; "" and "none" mean none.
func ParseFaults(s string) ([]FaultKind, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "none":
		return nil, nil
	case "all":
		return slices.Clone(AllFaults), nil
	}
	var out []FaultKind
	for _, f := range strings.Split(s, ",") {
		k := FaultKind(strings.TrimSpace(f))
		if !slices.Contains(AllFaults, k) {
			return nil, fmt.Errorf("unknown fault %q (have %v; partitions, membership and corruption are not built yet)", k, AllFaults)
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Target says which node a step hits: the current leader, a follower, any
// node at random, or a node ID.
type Target string

// Symbolic targets.
const (
	TargetLeader   Target = "leader"
	TargetFollower Target = "follower"
	TargetRandom   Target = "random"
)

// Step is one fault of a plan: wait Gap with the cluster whole, then fault
// the target for Hold, then heal it.
type Step struct {
	Kind   FaultKind     `json:"kind"`
	Target Target        `json:"target"`
	Gap    time.Duration `json:"gap_ns"`
	Hold   time.Duration `json:"hold_ns"`
}

func (s Step) String() string {
	return fmt.Sprintf("after %v: %s %s for %v", s.Gap, s.Kind, s.Target, s.Hold)
}

// Plan is a sequence of steps, run one at a time, until the run's time is
// up. A plan with Cycle set starts over when it reaches the end.
type Plan struct {
	Name  string `json:"name"`
	Steps []Step `json:"steps"`
	Cycle bool   `json:"cycle"`
}

// PlanNames lists the plans NewPlan knows.
var PlanNames = []string{"random", "cycle", "none"}

// NewPlan returns the named plan restricted to the given fault kinds:
//
//   - "random": seeded random steps filling total: each a random kind and
//     target after a 2-5 s gap, held 2-5 s (kill) or 2-12 s (pause, so
//     that some clients time out and record info).
//   - "cycle": a fixed cycle (kill the leader, pause a follower, pause the
//     leader, kill a follower), each after a 3 s gap and held 4 s. The
//     same plan on every run; CI uses it.
//   - "none": no faults (a baseline).
func NewPlan(name string, kinds []FaultKind, seed int64, total time.Duration) (Plan, error) {
	p := Plan{Name: name}
	switch name {
	case "none":
		return p, nil
	case "cycle":
		p.Cycle = true
		for _, s := range []Step{
			{FaultKill, TargetLeader, 3 * time.Second, 4 * time.Second},
			{FaultPause, TargetFollower, 3 * time.Second, 4 * time.Second},
			{FaultPause, TargetLeader, 3 * time.Second, 4 * time.Second},
			{FaultKill, TargetFollower, 3 * time.Second, 4 * time.Second},
		} {
			if slices.Contains(kinds, s.Kind) {
				p.Steps = append(p.Steps, s)
			}
		}
	case "random":
		if len(kinds) == 0 {
			return p, nil
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973))
		targets := []Target{TargetLeader, TargetFollower, TargetRandom}
		for t := time.Duration(0); t < total; {
			s := Step{
				Kind:   kinds[rng.IntN(len(kinds))],
				Target: targets[rng.IntN(len(targets))],
				Gap:    2*time.Second + time.Duration(rng.Int64N(int64(3*time.Second))).Round(100*time.Millisecond),
			}
			hold := 3 * time.Second // kills: 2-5 s
			if s.Kind == FaultPause {
				hold = 10 * time.Second // pauses: 2-12 s, some longer than the clients' op timeout
			}
			s.Hold = 2*time.Second + time.Duration(rng.Int64N(int64(hold))).Round(100*time.Millisecond)
			p.Steps = append(p.Steps, s)
			t += s.Gap + s.Hold + 2*time.Second // and about 2 s to recover
		}
	default:
		return p, fmt.Errorf("unknown plan %q (have %v)", name, PlanNames)
	}
	return p, nil
}

// FaultWindow is one injected fault, with times on the history's clock
// (nanoseconds, as check.Op.Time): Start when the fault took effect, End when
// the harness healed it (restart begun, SIGCONT sent), Recovered when the
// node was ready again (0 if it never was).
type FaultWindow struct {
	Kind      FaultKind `json:"kind"`
	Node      string    `json:"node"`
	Target    Target    `json:"target"`
	Start     int64     `json:"start_ns"`
	End       int64     `json:"end_ns"`
	Recovered int64     `json:"recovered_ns,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// NemesisProcess is the history process number of nemesis events. The
// checkers ignore their f values (kill, restart, pause, resume).
const NemesisProcess = -1

// Nemesis runs a plan against a cluster. It faults one node at a time and,
// before each fault, waits for the whole cluster to be healthy, so at most
// one node (a minority of three or five, and fewer than R=2 replicas) is ever
// down: every acknowledged message stays readable and must survive.
type Nemesis struct {
	c    *Cluster
	rec  *check.Recorder
	plan Plan
	rng  *rand.Rand
	logf func(format string, args ...any)

	mu      sync.Mutex
	windows []FaultWindow
	active  string
	skipped int
}

// NewNemesis prepares a nemesis; seed chooses random targets.
func NewNemesis(c *Cluster, rec *check.Recorder, plan Plan, seed int64, logf func(string, ...any)) *Nemesis {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Nemesis{c: c, rec: rec, plan: plan, rng: rand.New(rand.NewPCG(uint64(seed), 0x7461726765)), logf: logf}
}

// Run runs the plan until it ends or ctx is done. A fault in progress when
// ctx ends is healed at once; Run never returns with a node faulted by it.
func (n *Nemesis) Run(ctx context.Context) {
	if len(n.plan.Steps) == 0 {
		return
	}
	for i := 0; ; i++ {
		if i == len(n.plan.Steps) {
			if !n.plan.Cycle {
				return
			}
			i = 0
		}
		s := n.plan.Steps[i]
		if sleep(ctx, s.Gap) != nil {
			return
		}
		// Only fault a whole cluster: never two nodes down at once.
		if err := n.c.WaitHealthy(ctx, 30*time.Second); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.mu.Lock()
			n.skipped++
			n.mu.Unlock()
			n.logf("nemesis: cluster not healthy, skipping %s: %v", s, err)
			continue
		}
		n.step(ctx, s)
	}
}

func (n *Nemesis) step(ctx context.Context, s Step) {
	id := n.resolve(ctx, s.Target)
	w := FaultWindow{Kind: s.Kind, Node: id, Target: s.Target}
	heal := context.WithoutCancel(ctx)

	inv := check.Op{Process: NemesisProcess, Type: check.Invoke, F: string(s.Kind), Node: id}
	n.rec.Record(inv)
	var err error
	switch s.Kind {
	case FaultKill:
		kctx, cancel := context.WithTimeout(heal, 10*time.Second)
		err = n.c.Kill(kctx, id)
		cancel()
	case FaultPause:
		err = n.c.Pause(id)
	default:
		err = fmt.Errorf("unknown fault kind %q", s.Kind)
	}
	done := n.complete(inv, err)
	if err != nil {
		n.logf("nemesis: %s %s failed: %v", s.Kind, id, err)
		return
	}
	w.Start = done.Time
	n.setActive(fmt.Sprintf("%s %s", s.Kind, id))
	n.logf("nemesis: %s %s (%s) for %v", s.Kind, id, s.Target, s.Hold)
	sleep(ctx, s.Hold) // cut short when the run ends

	healF := "restart"
	if s.Kind == FaultPause {
		healF = "resume"
	}
	inv = check.Op{Process: NemesisProcess, Type: check.Invoke, F: healF, Node: id}
	inv, _ = n.rec.Record(inv)
	w.End = inv.Time
	switch s.Kind {
	case FaultKill:
		err = n.c.Restart(heal, id) // returns once the node is ready
	case FaultPause:
		if err = n.c.Resume(id); err == nil {
			err = n.c.WaitReady(heal, id, 30*time.Second)
		}
	}
	done = n.complete(inv, err)
	if err == nil {
		w.Recovered = done.Time
		n.logf("nemesis: %s %s: ready again after %v", healF, id, time.Duration(w.Recovered-w.End).Round(time.Millisecond))
	} else {
		w.Error = err.Error()
		n.logf("nemesis: %s %s failed: %v", healF, id, err)
	}
	n.mu.Lock()
	n.windows = append(n.windows, w)
	n.active = ""
	n.mu.Unlock()
}

// complete records the completion of a nemesis op: ok, or info with the
// error (the fault may or may not have happened).
func (n *Nemesis) complete(inv check.Op, err error) check.Op {
	op := inv
	op.Type = check.OK
	if err != nil {
		op.Type, op.Error = check.Info, err.Error()
	}
	op, _ = n.rec.Record(op)
	return op
}

func (n *Nemesis) setActive(s string) {
	n.mu.Lock()
	n.active = s
	n.mu.Unlock()
}

// resolve turns a target into a node ID. With no leader known, leader and
// follower targets fall back to a random node.
func (n *Nemesis) resolve(ctx context.Context, t Target) string {
	nodes := n.c.Nodes()
	if n.c.Node(string(t)) != nil {
		return string(t)
	}
	leader := ""
	if t == TargetLeader || t == TargetFollower {
		leader = n.c.Leader(ctx)
	}
	if t == TargetLeader && leader != "" {
		return leader
	}
	var pick []string
	for _, nd := range nodes {
		if t == TargetFollower && nd.ID == leader {
			continue
		}
		pick = append(pick, nd.ID)
	}
	return pick[n.rng.IntN(len(pick))]
}

// Windows returns the faults injected so far.
func (n *Nemesis) Windows() []FaultWindow {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.windows)
}

// Active describes the fault in progress, or "".
func (n *Nemesis) Active() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.active
}

// Skipped counts steps skipped because the cluster was not healthy.
func (n *Nemesis) Skipped() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.skipped
}
