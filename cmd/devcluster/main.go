// Command devcluster starts and stops a local three-node PowerMail cluster
// for development (`make run`, `make stop`). Each node is a real powermail
// process on loopback with its own data directory under --dir.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
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
	offset := flag.Int("port-offset", 0, "add this to every port")
	quiet := flag.Bool("quiet", false, "do not print connection help")
	flag.Parse()
	ns := nodes(3, *offset)
	var err error
	switch flag.Arg(0) {
	case "start":
		err = start(*bin, *dir, ns, *quiet)
	case "stop":
		err = stop(*dir, ns)
	default:
		err = errors.New("usage: devcluster [--bin B] [--dir D] [--port-offset N] start|stop")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "devcluster:", err)
		os.Exit(1)
	}
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
	var restarting []devNode
	for i, n := range ns {
		if alive(dir, n.id) {
			continue
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
		if err := spawn(bin, dir, n.id, sec, args); err != nil {
			return err
		}
		if restart {
			restarting = append(restarting, n)
			continue
		}
		if err := waitReady(n.admin, 20*time.Second); err != nil {
			return fmt.Errorf("%s: %w (see %s)", n.id, err, filepath.Join(dir, n.id+".log"))
		}
	}
	for _, n := range restarting {
		if err := waitReady(n.admin, 30*time.Second); err != nil {
			return fmt.Errorf("%s: %w (see %s)", n.id, err, filepath.Join(dir, n.id+".log"))
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

func spawn(bin, dir, id, sec string, args []string) error {
	logf, err := os.OpenFile(filepath.Join(dir, id+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "POWERMAIL_SECRET="+sec)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	return os.WriteFile(filepath.Join(dir, id+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
}

func waitReady(admin string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v", d)
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
Stop the cluster with: make stop
`, sec, dir, ns[0].admin, ns[1].admin, ns[2].admin, ns[0].smtp, ns[2].admin, port(ns[1].imap), port(ns[2].sub))
}

func alive(dir, id string) bool {
	raw, err := os.ReadFile(filepath.Join(dir, id+".pid"))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	return err == nil && syscall.Kill(pid, 0) == nil
}

func stop(dir string, ns []devNode) error {
	for _, n := range ns {
		path := filepath.Join(dir, n.id+".pid")
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		if pid > 0 && syscall.Kill(pid, syscall.SIGTERM) == nil {
			for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
				time.Sleep(100 * time.Millisecond)
			}
			fmt.Printf("stopped %s (pid %d)\n", n.id, pid)
		}
		os.Remove(path)
	}
	return nil
}

// port returns the port of a host:port address.
func port(addr string) string {
	_, p, _ := strings.Cut(addr, ":")
	return p
}
