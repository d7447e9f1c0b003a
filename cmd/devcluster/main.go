// Command devcluster starts and stops a local three-node PowerMail cluster
// for development (`make run`, `make stop`). Each node is a real powermail
// process on loopback with its own data directory under --dir.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type devNode struct {
	id                                          string
	cluster, admin, smtp, lmtp, imap, pop3, sub string
}

// nodes lays out n nodes' ports; offset shifts them all, so a second
// cluster (a benchmark) can run beside `make run`.
func nodes(n, offset int) []devNode {
	var out []devNode
	for i := 0; i < n; i++ {
		p := func(base int) string { return fmt.Sprintf("127.0.0.1:%d", base+offset+i) }
		out = append(out, devNode{
			id: fmt.Sprintf("n%d", i+1), cluster: p(7000), admin: p(8000),
			smtp: p(2525), lmtp: p(2424), imap: p(1143), pop3: p(1110), sub: p(5870),
		})
	}
	return out
}

func main() {
	bin := flag.String("bin", "bin/powermail", "powermail binary")
	dir := flag.String("dir", "run", "directory for data, logs and pid files")
	offset := flag.Int("port-offset", 0, "add this to every port (default: the offset --dir was first started with, else 0)")
	quiet := flag.Bool("quiet", false, "do not print connection help")
	flag.Parse()
	offsetGiven := false
	flag.Visit(func(f *flag.Flag) { offsetGiven = offsetGiven || f.Name == "port-offset" })
	var err error
	switch flag.Arg(0) {
	case "start":
		var off int
		if off, err = portOffset(*dir, *offset, offsetGiven); err == nil {
			err = start(*bin, *dir, nodes(3, off), *quiet)
		}
	case "stop":
		err = stopCluster(os.Stdout, *dir, nodes(3, *offset)) // pid files only: ports do not matter
	default:
		err = errors.New("usage: devcluster [--bin B] [--dir D] [--port-offset N] start|stop")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
}

// portOffset is the port offset to start the cluster in dir with, and
// records it there. The nodes' cluster addresses are in their raft
// configuration, so a restart on other ports would leave each node
// dialling the others' old ones: a dir that holds a cluster keeps the
// offset it was created with, and a different one given is refused.
func portOffset(dir string, given int, isGiven bool) (int, error) {
	path := filepath.Join(dir, "port-offset")
	saved := 0 // a cluster created before the offset was recorded
	_, err := os.Stat(filepath.Join(dir, "n1"))
	hasCluster := err == nil // the first node's data: it bootstrapped on those ports
	if raw, err := os.ReadFile(path); err == nil && hasCluster {
		if saved, err = strconv.Atoi(strings.TrimSpace(string(raw))); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	switch {
	case hasCluster && isGiven && given != saved:
		return 0, fmt.Errorf("the cluster in %s/ was created with port offset %d, and its nodes know each other by those ports; "+
			"start it with that offset, or remove it (make clean) to start afresh on other ports", dir, saved)
	case hasCluster:
		given = saved
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, err
	}
	return given, os.WriteFile(path, []byte(strconv.Itoa(given)+"\n"), 0o600)
}

func secret(dir string) (string, error) {
	path := filepath.Join(dir, "secret")
	if raw, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(raw)), nil
	}
	b := make([]byte, 16)
	rand.Read(b)
	s := hex.EncodeToString(b)
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

func start(bin, dir string, ns []devNode, quiet bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sec, err := secret(dir)
	if err != nil {
		return err
	}
	// A fresh node must be ready before the next joins through it. A node
	// restarting on its data cannot be ready until a majority is back, so
	// restarting nodes are all started first and waited for together.
	// Should one fail, the nodes this run started are stopped again: a
	// half-started cluster would hold ports and confuse the next attempt.
	var restarting []devNode
	var started []devNode
	exited := map[string]<-chan struct{}{}
	fail := func(n devNode, err error) error {
		stop(os.Stdout, dir, started)
		return fmt.Errorf("%s: %w (see %s); the nodes it started were stopped%s", n.id, err, filepath.Join(dir, n.id+".log"), portHint(dir, err))
	}
	for i, n := range ns {
		if alive(dir, n.id) {
			continue
		}
		if err := portsFree(n); err != nil {
			was := ""
			if len(started) > 0 {
				stop(os.Stdout, dir, started)
				was = "; the nodes started before it were stopped"
			}
			return fmt.Errorf("%s not started: %w%s%s", n.id, err, was, portHint(dir, err))
		}
		_, statErr := os.Stat(filepath.Join(dir, n.id))
		restart := statErr == nil
		args := []string{"server", "--id", n.id, "--data", filepath.Join(dir, n.id), "--cluster", n.cluster,
			"--admin", n.admin, "--smtp", n.smtp, "--lmtp", n.lmtp, "--imap", n.imap, "--pop3", n.pop3, "--submission", n.sub,
			"--hostname", n.id + ".powermail.test", "--allow-insecure-auth"} // loopback only
		if i == 0 {
			args = append(args, "--bootstrap")
		} else {
			args = append(args, "--join", ns[0].admin)
		}
		done, err := spawn(bin, dir, n.id, sec, args)
		if err != nil {
			return fail(n, err)
		}
		started, exited[n.id] = append(started, n), done
		if restart {
			restarting = append(restarting, n)
			continue
		}
		if err := waitReady(dir, sec, n, 20*time.Second, done); err != nil {
			return fail(n, err)
		}
	}
	for _, n := range restarting {
		if err := waitReady(dir, sec, n, 30*time.Second, exited[n.id]); err != nil {
			return fail(n, err)
		}
	}
	if err := seed(bin, sec, ns[0].admin); err != nil {
		return err
	}
	if !quiet {
		printInfo(dir, sec, ns)
	}
	return nil
}

// spawn starts one node in its own session, so that it outlives this
// command; the channel is closed if it exits while this command runs.
func spawn(bin, dir, id, sec string, args []string) (<-chan struct{}, error) {
	logf, err := os.OpenFile(filepath.Join(dir, id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "POWERMAIL_SECRET="+sec)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", id, err)
	}
	// Waiting reaps a node that dies at start (a taken port): unreaped, it
	// would stay a zombie that signal 0 still finds alive.
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	return done, os.WriteFile(filepath.Join(dir, id+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
}

// portsFree checks that every port of node n is free before it starts:
// a node of another cluster on them (a second make run beside a first)
// would answer for it.
func portsFree(n devNode) error {
	for _, a := range []struct{ name, addr string }{{"admin", n.admin}, {"cluster", n.cluster}, {"smtp", n.smtp},
		{"lmtp", n.lmtp}, {"imap", n.imap}, {"pop3", n.pop3}, {"submission", n.sub}} {
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			return fmt.Errorf("%s port %s is taken (another cluster, or another program): %w", a.name, a.addr, err)
		}
		ln.Close()
	}
	return nil
}

// waitReady waits until node n answers /readyz as a node of this
// cluster, and gives up at once if its process exits, with the last line
// it logged (say, a port in use). With the cluster's secret a node names
// its leader; one of another cluster, which holds another secret, says
// only "ready", and is not taken for n.
func waitReady(dir, sec string, n devNode, d time.Duration, exited <-chan struct{}) error {
	// Something else holding the port may accept and never answer: each
	// probe is short, so that an exit is noticed while it waits.
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ours, err := readyHere(client, sec, n.admin); err == nil && ours {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited at start: %s", lastLogLine(filepath.Join(dir, n.id+".log")))
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %v", d)
}

// readyHere reports whether the node at admin is ready and holds secret
// sec: its answer then names the leader.
func readyHere(client *http.Client, sec, admin string) (bool, error) {
	req, err := http.NewRequest("GET", "http://"+admin+"/readyz", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+sec)
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var body struct {
		Leader string `json:"leader"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return false, nil
	}
	return body.Leader != "", nil
}

// lastLogLine is the last non-blank line of a node's log: where a node
// that failed to start says why.
func lastLogLine(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// seed creates the demo domain and mailbox; "already exists" is fine.
func seed(bin, sec, admin string) error {
	steps := [][]string{
		{"domain", "add", "example.com"},
		{"mailbox", "add", "demo@example.com", "--password", "demo-password"},
	}
	for _, s := range steps {
		cmd := exec.Command(bin, append(s, "--addr", admin)...)
		cmd.Env = append(os.Environ(), "POWERMAIL_TOKEN="+sec)
		out, err := cmd.CombinedOutput()
		if err != nil && !strings.Contains(string(out), "already exists") {
			return fmt.Errorf("%s: %s", strings.Join(s, " "), out)
		}
	}
	return nil
}

func printInfo(dir, sec string, ns []devNode) {
	fmt.Printf("PowerMail: a three-node cluster is running (data and logs in %s/).\n\n", dir)
	fmt.Printf("%-4s %-16s %-16s %-16s %-16s %-16s %-16s %-16s\n", "NODE", "ADMIN", "CLUSTER", "SMTP", "LMTP", "IMAP", "POP3", "SUBMISSION")
	for _, n := range ns {
		fmt.Printf("%-4s %-16s %-16s %-16s %-16s %-16s %-16s %-16s\n", n.id, n.admin, n.cluster, n.smtp, n.lmtp, n.imap, n.pop3, n.sub)
	}
	fmt.Printf(`
Demo mailbox: demo@example.com, password demo-password (domain example.com).
Admin token (the cluster secret): %s

Try:
  export POWERMAIL_TOKEN=$(cat %s/secret)
  bin/powermail cluster status --addr %s
  bin/powermail mailbox ls --addr %s
  bin/powermail mailbox add you@example.com --password s3cret --addr %s
  python3 -c 'import smtplib; smtplib.SMTP("%s").sendmail("me@elsewhere.net", ["demo@example.com"], "Subject: hi\r\n\r\nhello\r\n")'   # any SMTP client, any node
  bin/powermail mailbox ls --addr %s           # the message count, from any node
  python3 -c 'import imaplib; m=imaplib.IMAP4("127.0.0.1", %s); m.login("demo@example.com","demo-password"); print(m.select("INBOX"))'
  python3 -c 'import smtplib; s=smtplib.SMTP("127.0.0.1", %s); s.login("demo@example.com","demo-password"); s.sendmail("demo@example.com", ["demo@example.com"], "From: demo@example.com\r\nSubject: sent\r\n\r\nthrough submission\r\n")'

Every node accepts mail (SMTP, LMTP), takes users' own mail (submission,
with the mailbox's password) and serves any mailbox (IMAP, POP3).
Plaintext logins are allowed without TLS here (--allow-insecure-auth),
because the cluster listens on loopback only.
Stop the cluster with: %s
`, sec, dir, ns[0].admin, ns[1].admin, ns[2].admin, ns[0].smtp, ns[2].admin, port(ns[1].imap), port(ns[2].sub), stopHint(dir))
}

// stopHint is the command that stops the cluster in dir: make stop
// knows only run/.
func stopHint(dir string) string {
	if dir == "run" {
		return "make stop"
	}
	quoted := dir
	if strings.ContainsAny(dir, " '\"$`\\\t") {
		quoted = "'" + strings.ReplaceAll(dir, "'", `'\''`) + "'"
	}
	return "bin/devcluster --dir " + quoted + " stop"
}

// portHint says, after a node failed on a port something else holds,
// how to get round it: free the port, or move every port, which means
// starting afresh since the offset is kept in dir with its cluster. The
// offset it names is not the one that failed, and it says what make
// clean deletes besides (the cluster's mail, and results/). A dir that
// holds no cluster yet keeps no offset, so the offset alone is enough.
func portHint(dir string, err error) string {
	if !strings.Contains(err.Error(), "address already in use") {
		return ""
	}
	_, err = os.Stat(filepath.Join(dir, "n1"))
	hasCluster := err == nil // else no offset is kept yet (portOffset)
	switch {
	case dir == "run" && !hasCluster:
		return fmt.Sprintf("; a port is taken: make run PORT_OFFSET=%d to move every port, or free the port and make run again", nextOffset(dir))
	case !hasCluster:
		return fmt.Sprintf("; a port is taken: start again with --port-offset %d, or free the port and start again", nextOffset(dir))
	case dir == "run":
		return fmt.Sprintf("; a port is taken: make clean, then make run PORT_OFFSET=%d to move every port "+
			"(make clean deletes run/ with the cluster's mail, and results/; run/ keeps the offset it was created with), "+
			"or free the port and make run again", nextOffset(dir))
	}
	return fmt.Sprintf("; a port is taken: remove %s and start again with --port-offset %d, or free the port and start again", dir, nextOffset(dir))
}

// nextOffset is a port offset other than the one dir's cluster was made
// with: the next multiple of 10000 that keeps every port below 65536.
func nextOffset(dir string) int {
	cur := 0
	if raw, err := os.ReadFile(filepath.Join(dir, "port-offset")); err == nil {
		cur, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
	}
	next := (cur/10000 + 1) * 10000
	if next+8002 > 65535 { // the highest port is the third node's admin, 8002 up
		next = 10000
	}
	return next
}

func alive(dir, id string) bool {
	raw, err := os.ReadFile(filepath.Join(dir, id+".pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	return err == nil && syscall.Kill(pid, 0) == nil && isNode(dir, id, pid)
}

// isNode reports whether process pid is node id of dir: its command line
// has --id id and --data naming dir/id (relative to its working
// directory). A node that died leaves its pid file, and the system may
// give that pid to another process, which must not be taken for the
// node, nor sent its SIGTERM. Where /proc cannot tell, the pid is
// trusted as before.
func isNode(dir, id string, pid int) bool {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	raw, err := os.ReadFile(filepath.Join(proc, "cmdline"))
	if err != nil {
		return errors.Is(err, os.ErrNotExist) && !procMounted()
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	hasID, hasData := false, false
	for i := 0; i+1 < len(args); i++ {
		switch args[i] {
		case "--id":
			hasID = hasID || args[i+1] == id
		case "--data":
			hasData = hasData || sameDir(proc, args[i+1], filepath.Join(dir, id))
		}
	}
	return hasID && hasData
}

// sameDir reports whether data, a --data of process proc (/proc/PID),
// names want. They are compared as files where both exist: the
// process's working directory reads from /proc as its real path, while
// ours may read as a symlinked one ($PWD), so the two spellings of one
// directory differ. A directory gone is compared by its path.
func sameDir(proc, data, want string) bool {
	if !filepath.IsAbs(data) {
		// The kernel resolves the process's cwd link as it resolves
		// the process's own relative paths.
		data = filepath.Join(proc, "cwd", data)
	}
	di, derr := os.Stat(data)
	wi, werr := os.Stat(want)
	if derr == nil && werr == nil {
		return os.SameFile(di, wi)
	}
	if cwd, err := os.Readlink(filepath.Join(proc, "cwd")); err == nil {
		data = strings.Replace(data, filepath.Join(proc, "cwd"), cwd, 1)
	}
	abs, _ := filepath.Abs(want)
	return filepath.Clean(data) == abs
}

// procMounted reports whether /proc describes processes here.
func procMounted() bool {
	_, err := os.Stat("/proc/self/cmdline")
	return err == nil
}

// stopCluster is devcluster stop: stop, and a word when no node was
// running, which silence left to be guessed (stopped, or nothing to
// stop?). Nothing to stop is no failure: the cluster is down either way.
func stopCluster(w io.Writer, dir string, ns []devNode) error {
	stopped, err := stop(w, dir, ns)
	if err == nil && stopped == 0 {
		fmt.Fprintf(w, "nothing was running (no node of %s/ to stop)\n", dir)
	}
	return err
}

// stop sends every node SIGTERM and waits for it to exit, and returns how
// many it stopped. A node drains its clients for up to 10 s and a leader
// hands leadership over first, so it may take a while; one still running
// after 30 s keeps its pid file and is reported, rather than said to be
// stopped. A pid file whose process is gone (a node that died) is
// removed, and said so.
func stop(w io.Writer, dir string, ns []devNode) (int, error) {
	var left []string
	stopped := 0
	for _, n := range ns {
		path := filepath.Join(dir, n.id+".pid")
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		if pid <= 0 || !isNode(dir, n.id, pid) || syscall.Kill(pid, syscall.SIGTERM) != nil {
			fmt.Fprintf(w, "%s was not running (its pid file named %q); removed the pid file\n", n.id, strings.TrimSpace(string(raw)))
			os.Remove(path)
			continue
		}
		for i := 0; i < 300 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if syscall.Kill(pid, 0) == nil {
			left = append(left, fmt.Sprintf("%s (pid %d)", n.id, pid))
			continue
		}
		fmt.Fprintf(w, "stopped %s (pid %d)\n", n.id, pid)
		stopped++
		os.Remove(path)
	}
	if len(left) > 0 {
		return stopped, fmt.Errorf("still running 30s after SIGTERM: %s; see their logs in %s/", strings.Join(left, ", "), dir)
	}
	return stopped, nil
}

// port returns the port of a host:port address.
func port(addr string) string {
	_, p, _ := strings.Cut(addr, ":")
	return p
}
