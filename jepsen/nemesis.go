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

// Fault kinds.
const (
	FaultKill      FaultKind = "kill"      // SIGKILL, then restart after Hold
	FaultPause     FaultKind = "pause"     // SIGSTOP, then SIGCONT after Hold
	FaultPartition FaultKind = "partition" // cut links between nodes (shape from the target), heal after Hold
	FaultSlow      FaultKind = "slow"      // delay every chunk to and from a node, for Hold
	FaultMember    FaultKind = "member"    // cluster remove, wipe the data directory, re-join after Hold
	FaultCorrupt   FaultKind = "corrupt"   // flip a byte of one body replica, read it through that node, wait for repair
)

// AllFaults lists every fault kind, in the order plans use them.
var AllFaults = []FaultKind{FaultKill, FaultPause, FaultPartition, FaultSlow, FaultMember, FaultCorrupt}

// FaultNames lists the fault kinds, comma-separated.
func FaultNames() string {
	names := make([]string, len(AllFaults))
	for i, k := range AllFaults {
		names[i] = string(k)
	}
	return strings.Join(names, ",")
}

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
			return nil, fmt.Errorf("unknown fault %q (have %v)", k, AllFaults)
		}
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// Target says which node a step hits: the current leader, a follower, any
// node at random, or a node ID. Partition steps read it as a shape:
// leader, follower, random or a node ID isolate that one node; minority
// cuts a random minority (which stays connected within itself) from the
// majority; bridge splits the other nodes into two halves that cannot
// talk and leaves one node talking to both.
type Target string

// Symbolic targets.
const (
	TargetLeader   Target = "leader"
	TargetFollower Target = "follower"
	TargetRandom   Target = "random"
	TargetMinority Target = "minority" // partitions only
	TargetBridge   Target = "bridge"   // partitions only
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

// cycleSteps is the fixed cycle, most telling faults first, so that a
// short run (CI) gets one of each kind.
var cycleSteps = []Step{
	{FaultPartition, TargetLeader, 3 * time.Second, 4 * time.Second},
	{FaultKill, TargetLeader, 3 * time.Second, 4 * time.Second},
	{FaultCorrupt, TargetRandom, 2 * time.Second, time.Second},
	{FaultMember, TargetFollower, 2 * time.Second, 4 * time.Second},
	{FaultSlow, TargetRandom, 2 * time.Second, 4 * time.Second},
	{FaultPause, TargetFollower, 3 * time.Second, 4 * time.Second},
	{FaultPartition, TargetBridge, 3 * time.Second, 4 * time.Second},
	{FaultPause, TargetLeader, 3 * time.Second, 4 * time.Second},
	{FaultKill, TargetFollower, 3 * time.Second, 4 * time.Second},
	{FaultPartition, TargetMinority, 3 * time.Second, 4 * time.Second},
	{FaultMember, TargetLeader, 3 * time.Second, 4 * time.Second},
}

// NewPlan returns the named plan restricted to the given fault kinds:
//
//   - "random": seeded random steps filling total, every kind once (in a
//     random order) and then random kinds, each with a random target after
//     a 2-5 s gap, held 2-5 s (kill, slow), 2-12 s (pause and
//     partition, so that some clients time out and record info), 3-8 s
//     (member) or 1 s (corrupt).
//   - "cycle": a fixed cycle (cycleSteps: isolate the leader, kill the
//     leader, corrupt a replica, remove and re-join a follower, a slow
//     node, pause a follower, a bridge, ...), the same plan on every run;
//     every kind comes up in the first five steps. CI uses it.
//   - "none": no faults (a baseline).
func NewPlan(name string, kinds []FaultKind, seed int64, total time.Duration) (Plan, error) {
	p := Plan{Name: name}
	switch name {
	case "none":
		return p, nil
	case "cycle":
		p.Cycle = true
		for _, s := range cycleSteps {
			if slices.Contains(kinds, s.Kind) {
				p.Steps = append(p.Steps, s)
			}
		}
	case "random":
		if len(kinds) == 0 {
			return p, nil
		}
		rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973))
		// Every kind once, in a random order, then any kind: a short run
		// still meets each kind.
		order := rng.Perm(len(kinds))
		for t := time.Duration(0); t < total; {
			k := kinds[rng.IntN(len(kinds))]
			if len(p.Steps) < len(order) {
				k = kinds[order[len(p.Steps)]]
			}
			s := randomStep(rng, k)
			p.Steps = append(p.Steps, s)
			t += s.Gap + s.Hold + 3*time.Second // and about 3 s to recover
		}
	default:
		return p, fmt.Errorf("unknown plan %q (have %v)", name, PlanNames)
	}
	return p, nil
}

func randomStep(rng *rand.Rand, kind FaultKind) Step {
	targets := []Target{TargetLeader, TargetFollower, TargetRandom}
	s := Step{
		Kind:   kind,
		Target: targets[rng.IntN(len(targets))],
		Gap:    2*time.Second + time.Duration(rng.Int64N(int64(3*time.Second))).Round(100*time.Millisecond),
	}
	lo, spread := 2*time.Second, 3*time.Second // kill, slow: 2-5 s
	switch s.Kind {
	case FaultPause, FaultPartition:
		spread = 10 * time.Second // 2-12 s, some longer than the clients' op timeout
	case FaultMember:
		lo, spread = 3*time.Second, 5*time.Second
	case FaultCorrupt:
		lo, spread = time.Second, 0
		s.Target = TargetRandom
	}
	if s.Kind == FaultPartition {
		shapes := []Target{TargetLeader, TargetFollower, TargetRandom, TargetMinority, TargetBridge}
		s.Target = shapes[rng.IntN(len(shapes))]
	}
	s.Hold = lo
	if spread > 0 {
		s.Hold += time.Duration(rng.Int64N(int64(spread))).Round(100 * time.Millisecond)
	}
	return s
}

// FaultWindow is one injected fault, with times on the history's clock
// (nanoseconds, as check.Op.Time): Start when the fault took effect, End when
// the harness began to heal it (restart begun, SIGCONT sent, links
// restored, join begun), Recovered when the cluster was whole again (0 if it
// never was): the node ready, or for member and corrupt faults every body
// verified on R replicas.
type FaultWindow struct {
	Kind      FaultKind `json:"kind"`
	Node      string    `json:"node"` // the faulted node, or the sides of a partition ("n1 | n2 n3")
	Target    Target    `json:"target"`
	Detail    string    `json:"detail,omitempty"` // cut links, delay, damaged body
	Start     int64     `json:"start_ns"`
	End       int64     `json:"end_ns"`
	Recovered int64     `json:"recovered_ns,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// NemesisProcess is the history process number of nemesis events. The
// checkers ignore their f values (kill, restart, pause, resume, ...).
const NemesisProcess = -1

// Nemesis runs a plan against a cluster. It faults one thing at a time
// and, before each fault, waits for the whole cluster to be healthy (and,
// before a membership change or a corruption, for every body to verify on
// R replicas), so at most a minority of nodes, and fewer than R replicas
// of any body, are ever out: every acknowledged message stays readable
// and must survive.
type Nemesis struct {
	c    *Cluster
	rec  *check.Recorder
	plan Plan
	rng  *rand.Rand
	logf func(format string, args ...any)
	// Probe, if set, reads a damaged body through the node holding the
	// damaged replica right after a corruption (Workload.Fetch).
	Probe func(ctx context.Context, node *Node, mailbox string, uid uint32, hash string)
	// Verify waits until every body verifies on R replicas (Redundancy).
	Verify func(ctx context.Context, budget time.Duration) error
	// Mailboxes are where corrupt looks for a stored body.
	Mailboxes []string

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
// ctx ends is healed at once; Run never returns with a fault in place.
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
		if err := n.ready(ctx, s); err != nil {
			if ctx.Err() != nil {
				return
			}
			n.mu.Lock()
			n.skipped++
			n.mu.Unlock()
			n.logf("nemesis: skipping %s: %v", s, err)
			continue
		}
		n.step(ctx, s)
	}
}

// ready waits until the cluster can take the step: healthy, and for
// destructive steps with every body on R verified replicas.
func (n *Nemesis) ready(ctx context.Context, s Step) error {
	if err := n.c.WaitHealthy(ctx, 30*time.Second); err != nil {
		return fmt.Errorf("cluster not healthy: %w", err)
	}
	if (s.Kind == FaultMember || s.Kind == FaultCorrupt) && n.Verify != nil {
		n.setActive("verifying redundancy")
		defer n.setActive("")
		if err := n.Verify(ctx, 2*time.Minute); err != nil {
			return fmt.Errorf("redundancy not verified: %w", err)
		}
	}
	return nil
}

// healF names the nemesis op that undoes a fault.
var healF = map[FaultKind]string{
	FaultKill: "restart", FaultPause: "resume", FaultPartition: "heal",
	FaultSlow: "unslow", FaultMember: "join", FaultCorrupt: "repair",
}

func (n *Nemesis) step(ctx context.Context, s Step) {
	heal := context.WithoutCancel(ctx)
	w := FaultWindow{Kind: s.Kind, Target: s.Target}
	inv, _ := n.rec.Record(check.Op{Process: NemesisProcess, Type: check.Invoke, F: string(s.Kind)})
	undo, err := n.inject(heal, s, &w)
	done := inv
	done.Node, done.Error = w.Node, w.Detail
	done = n.complete(done, err)
	if err != nil {
		n.logf("nemesis: %s %s failed: %v", s.Kind, s.Target, err)
		w.Start, w.End, w.Error = done.Time, done.Time, err.Error()
		if undo != nil { // part of it may have happened
			undo(heal)
		}
		n.addWindow(w)
		return
	}
	w.Start = done.Time
	n.setActive(fmt.Sprintf("%s %s", s.Kind, w.Node))
	n.logf("nemesis: %s %s (%s) for %v %s", s.Kind, w.Node, s.Target, s.Hold, w.Detail)
	sleep(ctx, s.Hold) // cut short when the run ends

	inv, _ = n.rec.Record(check.Op{Process: NemesisProcess, Type: check.Invoke, F: healF[s.Kind], Node: w.Node})
	w.End = inv.Time
	err = undo(heal)
	done = n.complete(inv, err)
	if err == nil {
		w.Recovered = done.Time
		n.logf("nemesis: %s %s: whole again after %v", healF[s.Kind], w.Node,
			time.Duration(w.Recovered-w.End).Round(time.Millisecond))
	} else {
		w.Error = err.Error()
		n.logf("nemesis: %s %s failed: %v", healF[s.Kind], w.Node, err)
	}
	n.addWindow(w)
}

// inject starts a fault and returns the function that heals it (and
// returns once the cluster is whole again).
func (n *Nemesis) inject(ctx context.Context, s Step, w *FaultWindow) (func(context.Context) error, error) {
	c := n.c
	switch s.Kind {
	case FaultKill:
		id := n.resolve(ctx, s.Target)
		w.Node = id
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := c.Kill(kctx, id); err != nil {
			return nil, err
		}
		return func(ctx context.Context) error { return c.Restart(ctx, id) }, nil
	case FaultPause:
		id := n.resolve(ctx, s.Target)
		w.Node = id
		if err := c.Pause(id); err != nil {
			return nil, err
		}
		return func(ctx context.Context) error {
			if err := c.Resume(id); err != nil {
				return err
			}
			return c.WaitReady(ctx, id, 30*time.Second)
		}, nil
	case FaultPartition:
		sides, pairs := n.partition(ctx, s.Target)
		w.Node = sides
		c.Net.Partition(pairs)
		w.Detail = "cut " + c.Net.Cuts()
		for _, nd := range c.Nodes() {
			nd.note("partition: %s (%s)", sides, w.Detail)
		}
		return func(ctx context.Context) error {
			c.Net.Heal()
			for _, nd := range c.Nodes() {
				nd.note("partition healed")
			}
			return c.WaitHealthy(ctx, 60*time.Second)
		}, nil
	case FaultSlow:
		id := n.resolve(ctx, s.Target)
		d := time.Duration(50+n.rng.IntN(200)) * time.Millisecond
		w.Node, w.Detail = id, fmt.Sprintf("delay %v per chunk each way", d)
		c.Net.Slow(id, d)
		c.Node(id).note("slow network: %v", d)
		return func(ctx context.Context) error {
			c.Net.Slow(id, 0)
			c.Node(id).note("network fast again")
			return c.WaitHealthy(ctx, 60*time.Second)
		}, nil
	case FaultMember:
		return n.member(ctx, s, w)
	case FaultCorrupt:
		return n.corrupt(ctx, w)
	}
	return nil, fmt.Errorf("unknown fault kind %q", s.Kind)
}

// member removes the target from the cluster (through another node),
// stops it and wipes its data; the heal re-joins it empty, waits until the
// cluster is healthy and every body verifies on R replicas again.
func (n *Nemesis) member(ctx context.Context, s Step, w *FaultWindow) (func(context.Context) error, error) {
	c := n.c
	id := n.resolve(ctx, s.Target)
	var via string
	for _, nd := range c.Nodes() {
		if nd.ID != id && (via == "" || n.rng.IntN(2) == 0) {
			via = nd.ID
		}
	}
	w.Node, w.Detail = id, "removed through "+via+", data wiped"
	rejoin := func(ctx context.Context) error {
		if err := c.Rejoin(ctx, id, via); err != nil {
			return err
		}
		if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
			return err
		}
		if n.Verify != nil {
			return n.Verify(ctx, 3*time.Minute)
		}
		return nil
	}
	if err := c.Remove(ctx, id, via); err != nil {
		// The removal may have gone through: make sure the node is back.
		return func(ctx context.Context) error {
			if ids, err := c.Members(ctx, c.Node(via).Admin); err == nil && slices.Contains(ids, id) && c.Node(id).State() == Running {
				return nil
			}
			if c.Node(id).State() != Down {
				kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				c.Kill(kctx, id)
				cancel()
			}
			return rejoin(ctx)
		}, err
	}
	return rejoin, nil
}

// corrupt damages one replica of a random stored body through the fault
// endpoint of the node holding it, then reads the message through that
// node (which must notice, and serve a good copy). The heal waits until
// every body verifies on R replicas again.
func (n *Nemesis) corrupt(ctx context.Context, w *FaultWindow) (func(context.Context) error, error) {
	c := n.c
	nodes := c.Nodes()
	var last error
	for try := 0; try < 5; try++ {
		via := nodes[n.rng.IntN(len(nodes))]
		if len(n.Mailboxes) == 0 {
			return nil, fmt.Errorf("no mailboxes to find a body in")
		}
		mailbox := n.Mailboxes[n.rng.IntN(len(n.Mailboxes))]
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var msgs []indexEntry
		err := c.Admin.Get(tctx, via.Admin, "/v1/mailboxes/"+mailbox+"/messages?limit=10000", &msgs)
		if err != nil || len(msgs) == 0 {
			cancel()
			last = fmt.Errorf("list %s: %v (%d messages)", mailbox, err, len(msgs))
			continue
		}
		m := msgs[n.rng.IntN(len(msgs))]
		var body struct {
			Replicas []string `json:"replicas"`
		}
		if err := c.Admin.Get(tctx, via.Admin, "/v1/bodies/"+m.Hash, &body); err != nil || len(body.Replicas) == 0 {
			cancel()
			last = fmt.Errorf("body %s: %v", m.Hash, err)
			continue
		}
		holder := c.Node(body.Replicas[n.rng.IntN(len(body.Replicas))])
		if holder == nil {
			cancel()
			continue
		}
		err = c.Admin.Post(tctx, holder.Admin, "/v1/fault/damage/"+m.Hash, struct{}{}, nil)
		cancel()
		if err != nil {
			last = fmt.Errorf("damage %s on %s: %w", m.Hash, holder.ID, err)
			continue
		}
		w.Node = holder.ID
		w.Detail = fmt.Sprintf("damaged body %s (%s uid %d)", m.Hash, mailbox, m.UID)
		holder.note("damaged body replica %s", m.Hash)
		if n.Probe != nil {
			n.Probe(ctx, holder, mailbox, m.UID, m.Hash)
		}
		return func(ctx context.Context) error {
			if n.Verify == nil {
				return nil
			}
			return n.Verify(ctx, 3*time.Minute)
		}, nil
	}
	return nil, fmt.Errorf("no body replica damaged: %v", last)
}

// partition turns a partition target into the links to cut, and a
// description of the sides.
func (n *Nemesis) partition(ctx context.Context, t Target) (string, [][2]string) {
	var ids []string
	for _, nd := range n.c.Nodes() {
		ids = append(ids, nd.ID)
	}
	n.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var groups [][]string
	switch t {
	case TargetMinority:
		k := (len(ids) - 1) / 2
		groups = [][]string{ids[:k], ids[k:]}
	case TargetBridge:
		// ids[0] is the bridge; the rest split into two halves.
		rest := ids[1:]
		h := len(rest) / 2
		a, b := rest[:h], rest[h:]
		pairs := cross(a, b)
		return fmt.Sprintf("%s | bridge %s | %s", strings.Join(sorted(a), " "), ids[0], strings.Join(sorted(b), " ")), pairs
	default:
		one := n.resolve(ctx, t)
		var others []string
		for _, id := range ids {
			if id != one {
				others = append(others, id)
			}
		}
		groups = [][]string{{one}, others}
	}
	return strings.Join(sorted(groups[0]), " ") + " | " + strings.Join(sorted(groups[1]), " "), cross(groups[0], groups[1])
}

func cross(a, b []string) [][2]string {
	var out [][2]string
	for _, x := range a {
		for _, y := range b {
			out = append(out, [2]string{x, y})
		}
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
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

func (n *Nemesis) addWindow(w FaultWindow) {
	n.mu.Lock()
	n.windows = append(n.windows, w)
	n.active = ""
	n.mu.Unlock()
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
