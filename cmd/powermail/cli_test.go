package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// These tests run the real binary three times, as an operator would, and
// drive the cluster only through the CLI.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "powermail-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "powermail")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const cliSecret = "cli-test-secret-0123456789"

type proc struct {
	bin                      string // the binary to run; "" is the one TestMain built
	id, cluster, admin, data string
	smtp, imap, pop3, sub    string
	lmtp                     string
	extra                    []string // the last start's extra flags, for restarts
	first                    []string // the first start's, where a restart adds to them
	cmd                      *exec.Cmd
	log                      *procLog
}

// procLog is a process's output: written by exec's copying goroutine
// while the test reads it (waitLog), so it is locked.
type procLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// issued remembers the ports freeAddr handed out in this test binary: the
// kernel may offer a just-closed port again, and two of one node's
// addresses on the same port fail its start.
var issued = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// freeAddr returns a loopback address no listener holds, for a server
// process to bind later. Ports come from below the kernel's ephemeral
// range: a port from inside it (what ":0" gives) can be taken before the
// server binds by any outgoing connection of the tests running beside
// this one, which failed CI runs with "address already in use".
func freeAddr(t *testing.T) string {
	t.Helper()
	lo, hi := portRange()
	for {
		port := 0
		if hi > lo {
			port = lo + rand.IntN(hi-lo)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			if port == 0 {
				t.Fatal(err)
			}
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		issued.Lock()
		dup := issued.ports[addr]
		issued.ports[addr] = true
		issued.Unlock()
		if !dup {
			return addr
		}
	}
}

// portRange is the span freeAddr draws from: the 10,000 ports under the
// ephemeral range, or none (use ":0") where that range starts too low.
func portRange() (int, int) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	var ephemeral int
	if err == nil {
		fmt.Sscan(string(raw), &ephemeral)
	}
	if ephemeral < 12000 {
		return 0, 0
	}
	return ephemeral - 10000, ephemeral
}

func (p *proc) start(t *testing.T, extra ...string) {
	t.Helper()
	p.extra = extra
	args := append([]string{"server", "--id", p.id, "--data", p.data, "--cluster", p.cluster, "--admin", p.admin}, extra...)
	p.cmd = exec.Command(cmp.Or(p.bin, binary), args...)
	p.cmd.Env = append(os.Environ(), "POWERMAIL_SECRET="+cliSecret)
	p.log = &procLog{}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, log := p.cmd, p.log
	// A failed test shows how each process it started ended: the cause
	// is often a node that exited early, not the one the test names.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s (%v) ended %v; the end of its log:\n%s", p.id, cmd.Args[2:], cmd.ProcessState, logTail(log.String(), 30))
		}
	})
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
}

// logTail is the last n lines of a process log, without raft's debug
// chatter.
func logTail(s string, n int) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, `"@level":"debug"`) && !strings.Contains(l, "level=DEBUG") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep[max(0, len(keep)-n):], "\n")
}

// waitLeader waits until the bootstrapping node p leads, and shows its
// log if it never does (a port taken between freeAddr and the bind, a
// crash).
func (p *proc) waitLeader(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if st, err := status(t, p.admin); err == nil && st.Leader == p.id {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become leader within %v; its log:\n%s", p.id, d, p.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *proc) stop(sig syscall.Signal) error {
	if p.cmd == nil || p.cmd.ProcessState != nil {
		return nil
	}
	p.cmd.Process.Signal(sig)
	return p.cmd.Wait()
}

// cli runs one client command and returns stdout, stderr and the error.
func cli(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	c := exec.Command(binary, args...)
	c.Env = append(os.Environ(), "POWERMAIL_TOKEN="+cliSecret)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr, c.Stdin = &out, &errb, strings.NewReader(stdin)
	err := c.Run()
	return out.String(), errb.String(), err
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, "", args...)
	if err != nil {
		t.Fatalf("powermail %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

type statusJSON struct {
	Leader string `json:"leader"`
	Health string `json:"health"`
	Nodes  []struct {
		ID          string `json:"id"`
		Role        string `json:"role"`
		ClusterAddr string `json:"cluster_addr"`
		AdminAddr   string `json:"admin_addr"`
		Bodies      int64  `json:"bodies"`
	} `json:"nodes"`
}

func status(t *testing.T, addr string) (statusJSON, error) {
	out, errOut, err := cli(t, "", "cluster", "status", "--json", "--addr", addr)
	var st statusJSON
	// Exit 1 with the status printed: a cluster that is not healthy.
	if err != nil && (out == "" || !strings.Contains(errOut, "cluster not healthy")) {
		return st, fmt.Errorf("%v: %s", err, errOut)
	}
	return st, json.Unmarshal([]byte(out), &st)
}

func waitStatus(t *testing.T, addr string, d time.Duration, ok func(statusJSON) bool) statusJSON {
	t.Helper()
	st, matched := pollStatus(t, addr, d, ok)
	if !matched {
		t.Fatalf("cluster status via %s never matched within %v: %+v", addr, d, st)
	}
	return st
}

// pollStatus polls addr's cluster status until ok or d passes, and
// returns the last status seen.
func pollStatus(t *testing.T, addr string, d time.Duration, ok func(statusJSON) bool) (statusJSON, bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, err := status(t, addr)
		if err == nil && ok(st) {
			return st, true
		}
		if time.Now().After(deadline) {
			return st, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func startCluster(t *testing.T) []*proc {
	dir := t.TempDir()
	var ps []*proc
	for i := 1; i <= 3; i++ {
		ps = append(ps, &proc{id: fmt.Sprintf("n%d", i), cluster: freeAddr(t), admin: freeAddr(t), data: filepath.Join(dir, fmt.Sprint(i))})
	}
	ps[0].start(t, "--bootstrap")
	ps[0].waitLeader(t, 30*time.Second)
	ps[1].start(t, "--join", ps[0].admin)
	waitStatus(t, ps[1].admin, 10*time.Second, func(s statusJSON) bool { return len(s.Nodes) == 2 })
	ps[2].start(t)
	waitStatus(t, ps[2].admin, 10*time.Second, func(s statusJSON) bool { return s.Health == "unavailable" })
	// The third node joins through the CLI instead of --join.
	mustCLI(t, "cluster", "join", "n3", ps[2].cluster, ps[2].admin, "--addr", ps[1].admin)
	waitStatus(t, ps[2].admin, 10*time.Second, func(s statusJSON) bool { return len(s.Nodes) == 3 && s.Health == "healthy" })
	return ps
}

func TestCLIDrivesThreeProcessCluster(t *testing.T) {
	ps := startCluster(t)
	mustCLI(t, "domain", "add", "example.com", "--addr", ps[1].admin)
	if _, errOut, err := cli(t, "s3cret-pass\n", "mailbox", "add", "Alice@Example.com", "--quota", "10M", "--addr", ps[2].admin); err != nil {
		t.Fatalf("mailbox add from stdin: %v %s", err, errOut)
	}
	mustCLI(t, "--addr", ps[0].admin, "forward", "add", "sales@example.com", "--to", "alice@example.com", "--to", "partner@elsewhere.net")
	// A forward of a mailbox's own address takes its mail: ls says so.
	mustCLI(t, "--addr", ps[0].admin, "mailbox", "add", "bob@example.com", "--no-password")
	mustCLI(t, "--addr", ps[0].admin, "forward", "add", "bob@example.com", "--to", "alice@example.com")
	for _, p := range ps {
		out := mustCLI(t, "mailbox", "ls", "--addr", p.admin)
		if !strings.Contains(out, "Alice@example.com") || !strings.Contains(out, "10.0MiB") || !strings.Contains(out, "accepted") {
			t.Fatalf("mailbox ls via %s:\n%s", p.id, out)
		}
		// The table's quota is for reading; --json's is exact.
		if out := mustCLI(t, "mailbox", "ls", "--json", "--addr", p.admin); !strings.Contains(out, `"quota_bytes": 10485760`) {
			t.Fatalf("mailbox ls --json via %s lacks the quota in bytes:\n%s", p.id, out)
		}
		if !regexp.MustCompile(`(?m)^bob@example\.com .*forwarded$`).MatchString(out) {
			t.Fatalf("mailbox ls via %s does not show bob's mail forwarded:\n%s", p.id, out)
		}
		out = mustCLI(t, "forward", "ls", "example.com", "--json", "--addr", p.admin)
		if !strings.Contains(out, "partner@elsewhere.net") {
			t.Fatalf("forward ls via %s:\n%s", p.id, out)
		}
	}

	// Failures: one line, non-zero exit, a reason that says what is wrong.
	fails := []struct {
		args []string
		want string
	}{
		{[]string{"mailbox", "add", "bob@unknown.org", "--password", "x"}, "not found"},
		{[]string{"mailbox", "add", "alice@example.com", "--password", "x"}, "already exists"},
		{[]string{"domain", "add", "bad_domain"}, "invalid input"},
		{[]string{"domain", "add", "example.com"}, "powermail: domain example.com already exists\n"}, // named once, the kind said once
		{[]string{"forward", "add", "alice@example.com", "--to", "sales@example.com"}, "loop"},
		{[]string{"domain", "ls", "--token", "wrong"}, "not authorised"},
		{[]string{"mailbox", "rm", "ghost@example.com"}, "not found"},
		{[]string{"domain", "delete", "example.com"}, `unknown command "delete"`}, // not help and exit 0
		{[]string{"cluster"}, "needs a command"},
		{[]string{"mailbox", "ls", "typo.example"}, "not found"}, // not an empty table
		{[]string{"mailbox", "quota", "alice@example.com"}, "usage: powermail mailbox quota"},
		{[]string{"domian", "ls"}, "Did you mean this?; domain"},
	}
	for _, f := range fails {
		_, errOut, err := cli(t, "", append(f.args, "--addr", ps[1].admin)...)
		if err == nil || !strings.Contains(errOut, f.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: err=%v stderr=%q, want one line with %q", f.args, err, errOut, f.want)
		}
	}

	// Flags before the command; the environment reaches a client command
	// only through its own flags: a server's POWERMAIL_WRITE_QUORUM must
	// not lower W through an unrelated settings set.
	if out := mustCLI(t, "--json", "--addr", ps[1].admin, "cluster", "status"); !strings.Contains(out, `"leader"`) {
		t.Fatalf("--json before the command:\n%s", out)
	}
	set := exec.Command(binary, "settings", "set", "--max-voters", "5", "--addr", ps[0].admin)
	set.Env = append(os.Environ(), "POWERMAIL_TOKEN="+cliSecret, "POWERMAIL_WRITE_QUORUM=1", "POWERMAIL_REPLICAS=1")
	if out, err := set.CombinedOutput(); err != nil {
		t.Fatalf("settings set: %v\n%s", err, out)
	}
	if out := mustCLI(t, "settings", "show", "--json", "--addr", ps[2].admin); !strings.Contains(out, `"write_quorum": 2`) || !strings.Contains(out, `"replicas": 2`) {
		t.Fatalf("the environment changed R or W through settings set:\n%s", out)
	}

	// SIGTERM stops the leader cleanly; a new leader takes over, and
	// writes go on through the survivors.
	st := waitStatus(t, ps[0].admin, 20*time.Second, func(s statusJSON) bool { return s.Leader != "" })
	var leader *proc
	for _, p := range ps {
		if p.id == st.Leader {
			leader = p
		}
	}
	if err := leader.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("leader did not exit cleanly on SIGTERM: %v\n%s", err, leader.log)
	}
	var survivor *proc
	for _, p := range ps {
		if p != leader {
			survivor = p
		}
	}
	waitStatus(t, survivor.admin, 20*time.Second, func(s statusJSON) bool { return s.Leader != "" && s.Leader != leader.id })
	mustCLI(t, "domain", "add", "after-failover.org", "--addr", survivor.admin)

	// The old leader restarts from its data directory and catches up.
	leader.start(t)
	waitStatus(t, leader.admin, 10*time.Second, func(s statusJSON) bool { return s.Health == "healthy" })
	if out := mustCLI(t, "domain", "ls", "--addr", leader.admin); !strings.Contains(out, "after-failover.org") {
		t.Fatalf("restarted node missed a write:\n%s", out)
	}

	// Remove a node with the CLI.
	mustCLI(t, "cluster", "remove", "n2", "--addr", ps[0].admin)
	st = waitStatus(t, ps[2].admin, 20*time.Second, func(s statusJSON) bool { return len(s.Nodes) == 2 })
	for _, n := range st.Nodes {
		if n.ID == "n2" {
			t.Fatalf("n2 still listed: %+v", st)
		}
	}
}

// TestMaintenanceTimeout: storage repair and gc wait an hour unless
// --timeout says otherwise.
func TestMaintenanceTimeout(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, maintenanceTimeout},
		{[]string{"--timeout", "5s"}, 5 * time.Second},
	} {
		var cl clientFlags
		cmd := &cobra.Command{Use: "gc", RunE: func(cmd *cobra.Command, _ []string) error {
			cl.lengthen(cmd, maintenanceTimeout)
			return nil
		}}
		cl.register(cmd)
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		if cl.timeout != tc.want {
			t.Errorf("%v: timeout %v, want %v", tc.args, cl.timeout, tc.want)
		}
	}
}

// A client port that is taken stops the server before its node starts:
// started first, a node with --join would be a member (a voter) that
// then died on the port.
func TestTakenClientPortStopsBeforeTheNode(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	data := filepath.Join(t.TempDir(), "n1")
	c := exec.Command(binary, "server", "--id", "n1", "--data", data, "--cluster", freeAddr(t), "--admin", freeAddr(t),
		"--smtp", taken.Addr().String(), "--bootstrap")
	c.Env = append(os.Environ(), "POWERMAIL_SECRET="+cliSecret)
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "client listener") {
		t.Fatalf("server with a taken SMTP port: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, "raft")); !os.IsNotExist(err) {
		t.Errorf("the node started before the port was checked: %v", err)
	}
}
