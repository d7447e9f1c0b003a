package jepsen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// BuildBinary builds the powermail binary into dir and returns its path. It
// must run inside the powermail module (the go command finds it from the
// working directory).
func BuildBinary(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin, err := filepath.Abs(filepath.Join(dir, "powermail"))
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "powermail/cmd/powermail").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build powermail: %w\n%s", err, out)
	}
	return bin, nil
}

// NodeState is what the harness last did to a node's process.
type NodeState int

// Node states. A killed or crashed node is Down until it is restarted.
const (
	Down NodeState = iota
	Running
	Paused
)

func (s NodeState) String() string {
	switch s {
	case Running:
		return "running"
	case Paused:
		return "paused"
	}
	return "down"
}

// Node is one powermail process. Its addresses and data directory stay the
// same across restarts.
type Node struct {
	ID      string
	Cluster string // raft and cluster RPC
	Admin   string
	SMTP    string
	Data    string
	Log     string // stdout and stderr of every incarnation, appended

	args []string // server arguments, the same on every start

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	state    NodeState
	expected bool // the harness caused the current process's exit
}

// State returns the node's current state.
func (n *Node) State() NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// Crash is a node process that exited without the harness asking it to.
type Crash struct {
	Node string    `json:"node"`
	At   time.Time `json:"at"`
	Err  string    `json:"error"`
}

// ClusterConfig describes the cluster to start.
type ClusterConfig struct {
	Binary   string // path to the powermail binary
	Dir      string // data directories and logs go here
	Nodes    int    // 3 or 5
	Replicas int    // R (and W) given to the bootstrap node
	// StartTimeout bounds waiting for one node to become ready. Zero: 30 s.
	StartTimeout time.Duration
	// Logf receives harness events; nil discards them.
	Logf func(format string, args ...any)
}

// Cluster is a set of powermail processes on loopback that the harness
// starts, kills, pauses and restarts. It keeps no global state, so a test
// process can run several.
type Cluster struct {
	cfg    ClusterConfig
	secret string
	nodes  []*Node
	Admin  *AdminClient

	mu      sync.Mutex
	crashes []Crash
}

// StartCluster starts cfg.Nodes processes: the first bootstraps the cluster
// with cfg.Replicas, the others join it one at a time. It returns once every
// node is ready and the cluster is healthy. On error, the processes started
// so far are stopped.
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("need at least one node, not %d", cfg.Nodes)
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = min(2, cfg.Nodes)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 30 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	rand.Read(b)
	c := &Cluster{cfg: cfg, secret: hex.EncodeToString(b)}
	c.Admin = NewAdminClient(c.secret)
	addrs, err := freeAddrs(3 * cfg.Nodes)
	if err != nil {
		return nil, err
	}
	for i := range cfg.Nodes {
		id := fmt.Sprintf("n%d", i+1)
		n := &Node{
			ID: id, Cluster: addrs[3*i], Admin: addrs[3*i+1], SMTP: addrs[3*i+2],
			Data: filepath.Join(dir, id), Log: filepath.Join(dir, id+".log"),
		}
		n.args = []string{"server", "--id", id, "--data", n.Data, "--cluster", n.Cluster,
			"--admin", n.Admin, "--smtp", n.SMTP, "--hostname", id + ".jepsen.test"}
		if i == 0 {
			n.args = append(n.args, "--bootstrap", "--replicas", fmt.Sprint(cfg.Replicas))
		} else {
			n.args = append(n.args, "--join", addrs[1])
		}
		c.nodes = append(c.nodes, n)
	}
	for i, n := range c.nodes {
		if err := c.start(n); err != nil {
			c.Stop(context.WithoutCancel(ctx))
			return nil, err
		}
		err := c.waitUntil(ctx, cfg.StartTimeout, func(ctx context.Context) error {
			if err := c.Admin.Ready(ctx, n.Admin); err != nil {
				return err
			}
			return c.healthy(ctx, n.Admin, i+1)
		})
		if err != nil {
			c.Stop(context.WithoutCancel(ctx))
			return nil, fmt.Errorf("start %s: %w (see %s)", n.ID, err, n.Log)
		}
		cfg.Logf("%s ready (admin %s, smtp %s)", n.ID, n.Admin, n.SMTP)
	}
	return c, nil
}

// freeAddrs picks n distinct free loopback ports. The listeners are held
// until all are chosen, so the ports differ from each other. Ports come
// from below the kernel's ephemeral range when it leaves room: a killed
// node's port must still be free when it restarts, and an ephemeral port
// could meanwhile be handed to some outgoing connection.
func freeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	lo, hi := 10000, ephemeralStart()
	var out []string
	for tries := 0; len(out) < n; tries++ {
		port := 0 // the kernel's choice, as a fallback
		if hi-lo >= 1000 && tries < 50*n {
			port = lo + mrand.IntN(hi-lo)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if port != 0 {
				continue
			}
			return nil, fmt.Errorf("pick a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// ephemeralStart is the first port of Linux's ephemeral range (32768 when
// it cannot be read).
func ephemeralStart() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var lo, hi int
	if _, err := fmt.Sscan(string(raw), &lo, &hi); err != nil || lo <= 0 {
		return 32768
	}
	return lo
}

// Secret is the cluster secret, which is also the admin token.
func (c *Cluster) Secret() string { return c.secret }

// Nodes returns the nodes in ID order.
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Node returns the node with the given ID, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Crashes returns the node exits the harness did not cause.
func (c *Cluster) Crashes() []Crash {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Crash(nil), c.crashes...)
}

// start spawns n's process. The process gets its own process group, so a
// Ctrl-C at the terminal reaches only the harness (which then stops the
// cluster), and dies with the harness (Pdeathsig) if the harness is killed.
func (c *Cluster) start(n *Node) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != Down {
		return fmt.Errorf("%s is %s, not down", n.ID, n.state)
	}
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== jepsen: start %s at %s\n", n.ID, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(c.cfg.Binary, n.args...)
	cmd.Env = append(os.Environ(), "POWERMAIL_SECRET="+c.secret)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.state, n.expected = cmd, done, Running, false
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		expected := n.expected
		if n.cmd == cmd {
			n.state = Down
		}
		n.mu.Unlock()
		close(done)
		if !expected {
			msg := "exited"
			if err != nil {
				msg = err.Error()
			}
			c.mu.Lock()
			c.crashes = append(c.crashes, Crash{Node: n.ID, At: time.Now(), Err: msg})
			c.mu.Unlock()
			c.cfg.Logf("%s exited unexpectedly: %s (see %s)", n.ID, msg, n.Log)
		}
	}()
	return nil
}

// signal sends sig to n's process and marks the exit it may cause as
// expected.
func (n *Node) signal(sig syscall.Signal) (chan struct{}, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == Down || n.cmd == nil {
		return nil, fmt.Errorf("%s is down", n.ID)
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		n.expected = true
	}
	if err := n.cmd.Process.Signal(sig); err != nil {
		return nil, fmt.Errorf("signal %s: %w", n.ID, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.state = Paused
	case syscall.SIGCONT:
		n.state = Running
	}
	return n.done, nil
}

func (n *Node) note(format string, args ...any) {
	if f, err := os.OpenFile(n.Log, os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		fmt.Fprintf(f, "=== jepsen: "+format+" at %s\n", append(args, time.Now().Format(time.RFC3339Nano))...)
		f.Close()
	}
}

// Kill sends SIGKILL to a node (running or paused) and waits for it to exit.
func (c *Cluster) Kill(ctx context.Context, id string) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	done, err := n.signal(syscall.SIGKILL)
	if err != nil {
		return err
	}
	select {
	case <-done:
		n.note("SIGKILL %s", id)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kill %s: %w", id, ctx.Err())
	}
}

// Restart starts a down node again with its original command line and
// waits until it is ready. A process that exits while starting (a port not
// yet free, say) is retried a few times.
func (c *Cluster) Restart(ctx context.Context, id string) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		if err := c.start(n); err != nil {
			return err
		}
		n.mu.Lock()
		done := n.done
		n.mu.Unlock()
		err := c.waitUntil(ctx, c.cfg.StartTimeout, func(ctx context.Context) error {
			select {
			case <-done:
				return errExited
			default:
			}
			return c.Admin.Ready(ctx, n.Admin)
		})
		if err == nil {
			return nil
		}
		last = err
		if !errors.Is(err, errExited) {
			return fmt.Errorf("restart %s: %w (see %s)", id, err, n.Log)
		}
		c.forgetCrash(id)
		c.cfg.Logf("%s exited while starting; retrying", id)
		if err := sleep(ctx, time.Second); err != nil {
			return err
		}
	}
	return fmt.Errorf("restart %s: %w (see %s)", id, last, n.Log)
}

var errExited = errors.New("process exited")

// forgetCrash drops the last crash of id: an exit during a restart attempt
// is retried, and reported only if every attempt fails.
func (c *Cluster) forgetCrash(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.crashes) - 1; i >= 0; i-- {
		if c.crashes[i].Node == id {
			c.crashes = append(c.crashes[:i], c.crashes[i+1:]...)
			return
		}
	}
}

// Pause stops a node's process with SIGSTOP. Its sockets stay open: peers
// and clients connect and wait.
func (c *Cluster) Pause(id string) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	if st := n.State(); st != Running {
		return fmt.Errorf("%s is %s, not running", id, st)
	}
	_, err := n.signal(syscall.SIGSTOP)
	if err == nil {
		n.note("SIGSTOP %s", id)
	}
	return err
}

// Resume continues a paused node with SIGCONT.
func (c *Cluster) Resume(id string) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	_, err := n.signal(syscall.SIGCONT)
	if err == nil {
		n.note("SIGCONT %s", id)
	}
	return err
}

// WaitReady waits until the node answers /readyz (read barrier passed).
func (c *Cluster) WaitReady(ctx context.Context, id string, d time.Duration) error {
	n := c.Node(id)
	if n == nil {
		return fmt.Errorf("no node %q", id)
	}
	return c.waitUntil(ctx, d, func(ctx context.Context) error { return c.Admin.Ready(ctx, n.Admin) })
}

// WaitHealthy waits until every node runs and is ready, and the cluster
// status (asked of the first node) lists all of them as reachable voters
// with a leader.
func (c *Cluster) WaitHealthy(ctx context.Context, d time.Duration) error {
	return c.waitUntil(ctx, d, func(ctx context.Context) error {
		for _, n := range c.nodes {
			if st := n.State(); st != Running {
				return fmt.Errorf("%s is %s", n.ID, st)
			}
			if err := c.Admin.Ready(ctx, n.Admin); err != nil {
				return err
			}
		}
		return c.healthy(ctx, c.nodes[0].Admin, len(c.nodes))
	})
}

func (c *Cluster) healthy(ctx context.Context, addr string, members int) error {
	st, err := c.Admin.Status(ctx, addr)
	if err != nil {
		return err
	}
	if len(st.Nodes) != members || st.Health != "healthy" {
		return fmt.Errorf("cluster %s with %d members (want healthy with %d)", st.Health, len(st.Nodes), members)
	}
	return nil
}

// Leader returns the leader's ID as seen by the first running node that
// answers, or "" when none knows one.
func (c *Cluster) Leader(ctx context.Context) string {
	for _, n := range c.nodes {
		if n.State() != Running {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.Admin.Status(cctx, n.Admin)
		cancel()
		if err == nil && st.Leader != "" {
			return st.Leader
		}
	}
	return ""
}

// Heal resumes paused nodes, restarts down ones and waits until the cluster
// is healthy.
func (c *Cluster) Heal(ctx context.Context, d time.Duration) error {
	var errs []error
	for _, n := range c.nodes {
		switch n.State() {
		case Paused:
			errs = append(errs, c.Resume(n.ID))
		case Down:
			c.cfg.Logf("heal: restarting %s", n.ID)
			errs = append(errs, c.Restart(ctx, n.ID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.WaitHealthy(ctx, d)
}

// Stop shuts every node down: paused ones are continued, then all get
// SIGTERM; a node still running after the context ends (or 20 s) gets
// SIGKILL.
func (c *Cluster) Stop(ctx context.Context) {
	defer c.Admin.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		if n.State() == Down {
			continue
		}
		if n.State() == Paused {
			n.signal(syscall.SIGCONT)
		}
		done, err := n.signal(syscall.SIGTERM)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-done:
			case <-ctx.Done():
				n.signal(syscall.SIGKILL)
				<-done
			}
		}()
	}
	wg.Wait()
}

// waitUntil polls f every 200 ms, each try bounded to 2 s, until it
// succeeds, d passes or ctx ends; it returns f's last error.
func (c *Cluster) waitUntil(ctx context.Context, d time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		tctx, tcancel := context.WithTimeout(ctx, 2*time.Second)
		err := f(tctx)
		tcancel()
		if err == nil || errors.Is(err, errExited) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
