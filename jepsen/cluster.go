package jepsen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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

// Node is one powermail process. Its addresses stay the same across
// restarts and re-joins; its data directory is wiped when it is removed
// from the cluster and joins again.
type Node struct {
	ID      string
	Cluster string // the real raft and cluster RPC listener
	Advert  string // the address peers dial: this node's proxy in Net
	Admin   string
	SMTP    string
	IMAP    string
	POP3    string
	Data    string
	Log     string // stdout and stderr of every incarnation, appended

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process has exited
	state    NodeState
	expected bool   // the harness caused the current process's exit
	join     string // admin address to join through on the next start ("": bootstrap)
	starts   int
}

// Pid is the current process's id, or 0 when the node is down.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.state == Down || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
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
	// Output is the end of what the process wrote: from its panic or
	// fatal error when there is one.
	Output string `json:"output,omitempty"`
	// Known names the known server bug whose signature Output matches
	// (see knownCrashes), or "".
	Known string `json:"known,omitempty"`
}

// knownCrashes are signatures of server crashes already described in
// jepsen/RESULTS.md: every line must appear in the crash's output.
var knownCrashes = []struct {
	Bug   string
	Lines []string
}{
	{"bug 2", []string{"nil pointer dereference", "raft.(*Raft).State", "node.(*Node).onLeader"}},
}

// newCrash describes an unexpected exit from its output.
func newCrash(node, err, output string) Crash {
	cr := Crash{Node: node, At: time.Now(), Err: err, Output: output}
	for _, marker := range []string{"panic:", "fatal error:"} {
		if i := strings.Index(output, marker); i >= 0 {
			cr.Output = output[i:]
			break
		}
	}
	if len(cr.Output) > 2000 {
		cr.Output = cr.Output[:2000]
	}
	for _, k := range knownCrashes {
		all := true
		for _, l := range k.Lines {
			all = all && strings.Contains(cr.Output, l)
		}
		if all {
			cr.Known = k.Bug
		}
	}
	return cr
}

// ClusterConfig describes the cluster to start.
type ClusterConfig struct {
	Binary   string // path to the powermail binary
	Dir      string // data directories and logs go here
	Nodes    int    // 3 or 5
	Replicas int    // R (and W) given to the bootstrap node
	// StartTimeout bounds waiting for one node to become ready. Zero: 30 s.
	StartTimeout time.Duration
	// ServerArgs are added to every node's command line (tuning flags).
	ServerArgs []string
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
	// Net holds the proxies in front of every cluster port; partitions
	// and slow links are made there.
	Net *Net

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
	const perNode = 6 // cluster, proxy, admin, smtp, imap, pop3
	addrs, err := freeAddrs(perNode * cfg.Nodes)
	if err != nil {
		return nil, err
	}
	c.Net = NewNet(c.dialer, cfg.Logf)
	for i := range cfg.Nodes {
		id := fmt.Sprintf("n%d", i+1)
		a := addrs[perNode*i:]
		n := &Node{
			ID: id, Cluster: a[0], Admin: a[2], SMTP: a[3], IMAP: a[4], POP3: a[5],
			Data: filepath.Join(dir, id), Log: filepath.Join(dir, id+".log"),
		}
		if n.Advert, err = c.Net.Listen(id, a[1], n.Cluster); err != nil {
			c.Net.Close()
			return nil, err
		}
		if i > 0 {
			n.join = addrs[2] // n1's admin address
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
		cfg.Logf("%s ready (admin %s, smtp %s, imap %s, pop3 %s, cluster %s via proxy %s)",
			n.ID, n.Admin, n.SMTP, n.IMAP, n.POP3, n.Cluster, n.Advert)
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

// args is n's server command line for its next start. The first node
// bootstraps on its first start; every other start (of any node) joins
// through a member's admin API, which is a no-op for a node that is
// already a member.
func (c *Cluster) args(n *Node) []string {
	args := []string{"server", "--id", n.ID, "--data", n.Data,
		"--cluster", n.Cluster, "--advertise", n.Advert, "--admin", n.Admin,
		"--smtp", n.SMTP, "--imap", n.IMAP, "--pop3", n.POP3,
		"--hostname", n.ID + ".jepsen.test", "--allow-insecure-auth", "--enable-fault-injection"}
	args = append(args, c.cfg.ServerArgs...)
	if n.join == "" {
		return append(args, "--bootstrap", "--replicas", fmt.Sprint(c.cfg.Replicas))
	}
	return append(args, "--join", n.join)
}

// dialer names the node whose process dialed conn, an accepted proxy
// connection, or "" when it is none of them.
func (c *Cluster) dialer(conn net.Conn) string {
	pids := map[int]string{}
	for _, n := range c.nodes {
		if pid := n.Pid(); pid != 0 {
			pids[pid] = n.ID
		}
	}
	for try := 0; try < 3; try++ {
		id, err := ownerOf(conn, pids)
		if id != "" || err == nil {
			return id
		}
		time.Sleep(5 * time.Millisecond) // the dialer's socket may not be listed yet
	}
	return ""
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
	args := c.args(n)
	fmt.Fprintf(logf, "=== jepsen: start %s at %s: %s\n", n.ID, time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(c.cfg.Binary, args...)
	cmd.Env = append(os.Environ(), "POWERMAIL_SECRET="+c.secret, "GOTRACEBACK=all") // every goroutine in a crash dump
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.ID, err)
	}
	done := make(chan struct{})
	n.cmd, n.done, n.state, n.expected = cmd, done, Running, false
	n.starts++
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
			cr := newCrash(n.ID, msg, n.lastOutput())
			c.mu.Lock()
			c.crashes = append(c.crashes, cr)
			c.mu.Unlock()
			known := ""
			if cr.Known != "" {
				known = ", known " + cr.Known
			}
			c.cfg.Logf("%s exited unexpectedly: %s%s (see %s)", n.ID, msg, known, n.Log)
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

// lastOutput returns what the current (or last) incarnation of n wrote to
// its log, up to the last 64 KiB.
func (n *Node) lastOutput() string {
	f, err := os.Open(n.Log)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	raw, _ := io.ReadAll(f)
	s := string(raw)
	if i := strings.LastIndex(s, "=== jepsen: start "); i >= 0 {
		s = s[i:]
	}
	return s
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
		// A port not yet free is the harness's problem, and forgiven;
		// any other exit (a panic, say) stays a crash, but the node is
		// started again so that the run goes on.
		if tail := n.lastOutput(); strings.Contains(tail, "address already in use") {
			c.forgetCrash(id)
			c.cfg.Logf("%s exited while starting (port not yet free); retrying", id)
		} else {
			c.cfg.Logf("%s exited while starting; retrying", id)
		}
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
// status (asked of every node in turn) lists all of them as reachable
// voters with a leader.
func (c *Cluster) WaitHealthy(ctx context.Context, d time.Duration) error {
	i := 0
	return c.waitUntil(ctx, d, func(ctx context.Context) error {
		for _, n := range c.nodes {
			if st := n.State(); st != Running {
				return fmt.Errorf("%s is %s", n.ID, st)
			}
			if err := c.Admin.Ready(ctx, n.Admin); err != nil {
				return err
			}
		}
		i++
		return c.healthy(ctx, c.nodes[i%len(c.nodes)].Admin, len(c.nodes))
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

// Heal restores the network, resumes paused nodes, restarts down ones and
// waits until the cluster is healthy.
func (c *Cluster) Heal(ctx context.Context, d time.Duration) error {
	c.Net.Heal()
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
	defer c.Net.Close()
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

// CLI runs the powermail binary as an operator would, against the admin
// API of the node at addr, with the cluster secret as token, and returns
// its standard output. A non-zero exit is an error carrying both outputs.
func (c *Cluster) CLI(ctx context.Context, addr string, args ...string) ([]byte, error) {
	args = append(args, "--addr", addr, "--token", c.secret)
	cmd := exec.CommandContext(ctx, c.cfg.Binary, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		// The last line of stderr is the one-line reason (progress bars
		// come before it).
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndexAny(msg, "\r\n"); i >= 0 {
			msg = msg[i+1:]
		}
		return []byte(out.String()), fmt.Errorf("powermail %s: %w: %s", strings.Join(args[:len(args)-4], " "), err, msg)
	}
	return []byte(out.String()), nil
}

// Members returns the member IDs in the cluster status of the node at
// addr.
func (c *Cluster) Members(ctx context.Context, addr string) ([]string, error) {
	st, err := c.Admin.Status(ctx, addr)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, m := range st.Nodes {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// Remove takes node id out of the cluster with "powermail cluster remove"
// through the node via, waits until via no longer lists it, then stops its
// process (SIGKILL) and wipes its data directory: the node is gone for
// good, as when a machine is replaced.
func (c *Cluster) Remove(ctx context.Context, id, via string) error {
	n, v := c.Node(id), c.Node(via)
	if n == nil || v == nil {
		return fmt.Errorf("no node %q or %q", id, via)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.CLI(cctx, v.Admin, "cluster", "remove", id, "--timeout", "20s"); err != nil {
		return err
	}
	n.note("removed from the cluster through %s", via)
	err := c.waitUntil(ctx, 20*time.Second, func(ctx context.Context) error {
		ids, err := c.Members(ctx, v.Admin)
		if err == nil && slices.Contains(ids, id) {
			err = fmt.Errorf("%s still lists %s", via, id)
		}
		return err
	})
	if err != nil {
		return err
	}
	if n.State() != Down {
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := c.Kill(kctx, id)
		cancel()
		if err != nil {
			return err
		}
	}
	if err := os.RemoveAll(n.Data); err != nil {
		return fmt.Errorf("wipe %s: %w", n.Data, err)
	}
	n.note("data directory wiped")
	return nil
}

// Rejoin starts a removed node with an empty data directory and --join
// through the node via, and waits until it is ready: it must install a
// snapshot and catch up before it answers /readyz.
func (c *Cluster) Rejoin(ctx context.Context, id, via string) error {
	n, v := c.Node(id), c.Node(via)
	if n == nil || v == nil {
		return fmt.Errorf("no node %q or %q", id, via)
	}
	n.mu.Lock()
	n.join = v.Admin
	n.mu.Unlock()
	return c.Restart(ctx, id)
}
