package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The help printed at start named `make stop` whatever --dir was: for a
// cluster started elsewhere (a benchmark's, a second one beside make
// run), that stops the one in run/, and leaves this one running.
func TestStopHintNamesTheDir(t *testing.T) {
	for dir, want := range map[string]string{
		"run":           "make stop",
		"/tmp/bench":    "bin/devcluster --dir /tmp/bench stop",
		"my dir/x":      "bin/devcluster --dir 'my dir/x' stop",
		"/tmp/it's-odd": `bin/devcluster --dir '/tmp/it'\''s-odd' stop`,
	} {
		if got := stopHint(dir); got != want {
			t.Errorf("stopHint(%q) = %q, want %q", dir, got, want)
		}
	}
}

// A port taken by something else stopped make run with the bind error
// alone: the way round it (another port offset, on a fresh run/) was
// only in the README.
func TestTakenPortHintsAtTheOffset(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(filepath.Join("run", "n1"), 0o700); err != nil {
		t.Fatal(err)
	}
	taken := errors.New("exited at start: powermail: client listener: listen tcp 127.0.0.1:2526: bind: address already in use")
	for dir, want := range map[string]string{
		"run":        "make clean, then make run PORT_OFFSET=10000",
		"/tmp/bench": "--port-offset",
	} {
		if got := portHint(dir, taken); !strings.Contains(got, want) {
			t.Errorf("portHint(%q) = %q, want it to name %q", dir, got, want)
		}
	}
	if got := portHint("run", errors.New("exited at start: powermail: invalid node configuration")); got != "" {
		t.Errorf("hint for another failure: %q", got)
	}
}

// TestTakenPortHintOfAnOffsetCluster: a run/ made with PORT_OFFSET=10000
// whose port was taken was told to make run PORT_OFFSET=10000, the
// offset that failed. The hint names another, and says what make clean
// deletes (the cluster's mail, and results/) before an operator runs it
// on a cluster worth keeping, and that freeing the port is the other way.
func TestTakenPortHintOfAnOffsetCluster(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(filepath.Join("run", "n1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("run", "port-offset"), []byte("10000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	taken := errors.New("exited at start: powermail: client listener: listen tcp 127.0.0.1:12526: bind: address already in use")
	got := portHint("run", taken)
	for _, want := range []string{"PORT_OFFSET=20000", "free", "deletes run/"} {
		if !strings.Contains(got, want) {
			t.Errorf("portHint = %q, want it to name %q", got, want)
		}
	}
	if strings.Contains(got, "PORT_OFFSET=10000") {
		t.Errorf("portHint = %q names the offset that failed", got)
	}
}

// TestStopSaysWhenNothingRan: make stop with no cluster running printed
// nothing, which reads as "stopped" as well as "nothing to stop". It says
// that nothing was running (and succeeds), also when the pid files are
// left over from nodes that died on their own, which it clears.
func TestStopSaysWhenNothingRan(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := stopCluster(&out, dir, nodes(3, 0)); err != nil {
		t.Fatalf("stop with no pid files: %v", err)
	}
	if got := out.String(); !strings.Contains(got, "nothing was running") {
		t.Errorf("stop with no pid files said %q", got)
	}

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "n2.pid")
	if err := os.WriteFile(stale, []byte(strconv.Itoa(gone.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := stopCluster(&out, dir, nodes(3, 0)); err != nil {
		t.Fatalf("stop with a stale pid file: %v", err)
	}
	if got := out.String(); !strings.Contains(got, "nothing was running") || !strings.Contains(got, "n2") {
		t.Errorf("stop with n2's stale pid file said %q, want it to name n2 and say nothing was running", got)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale pid file is still there: %v", err)
	}
}

// TestStopLeavesAProcessThatReusedAPid: a node that died leaves its pid
// file, and the system may give that pid to another process, which stop
// then sent SIGTERM. Only a process that is this node (its --id and
// --data) is signalled; another is left running and the file removed.
func TestStopLeavesAProcessThatReusedAPid(t *testing.T) {
	dir := t.TempDir()
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	pidFile := filepath.Join(dir, "n1.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if alive(dir, "n1") {
		t.Error("alive took another process for n1")
	}
	var out strings.Builder
	if err := stopCluster(&out, dir, nodes(3, 0)); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("stop signalled the process that reused n1's pid: %v (said %q)", err, out.String())
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("n1's pid file is still there: %v", err)
	}
	if got := out.String(); !strings.Contains(got, "n1 was not running") {
		t.Errorf("stop said %q", got)
	}
}

// TestStopSignalsANodeStartedThroughASymlinkedDirectory: make run from a
// directory reached through a symlink starts each node with a relative
// --data in that directory. The node's /proc cwd is the real path, while
// the devcluster's own working directory reads as the symlinked one
// ($PWD), so the node was taken for another process: run started a
// second cluster over it and stop left it running.
func TestStopSignalsANodeStartedThroughASymlinkedDirectory(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "checkout")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	t.Chdir(link)
	dir := "run"
	if err := os.MkdirAll(filepath.Join(dir, "n1"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A shell that stays a shell (two commands), with the node's flags
	// on its command line as devcluster passes them.
	node := exec.Command("sh", "-c", "sleep 60; true", "powermail", "server",
		"--id", "n1", "--data", filepath.Join(dir, "n1"))
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { node.Wait(); close(exited) }() // reaped, or stop waits for the zombie
	t.Cleanup(func() { node.Process.Kill(); <-exited })
	pidFile := filepath.Join(dir, "n1.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(node.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !alive(dir, "n1") {
		t.Error("alive did not take the node started in a symlinked directory for n1")
	}
	var out strings.Builder
	if err := stopCluster(&out, dir, nodes(1, 0)); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got := out.String(); !strings.Contains(got, "stopped n1") {
		t.Errorf("stop said %q of a running n1", got)
	}
}

// TestStartRefusesPortsAnotherClusterHolds: a second make run (another
// checkout, another --dir) beside a running cluster took that cluster's
// nodes, answering /readyz on the same admin ports, for its own: the
// new nodes died on their taken ports unnoticed, and the run ended in
// "domain add example.com: not authorised", which points nowhere near
// the cause. The taken port is named, with the way round it, and no
// node is left behind.
func TestStartRefusesPortsAnotherClusterHolds(t *testing.T) {
	other := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A node of another cluster: without its own secret, only this.
		w.Write([]byte(`{"status":"ready"}`))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go other.Serve(ln)
	t.Cleanup(func() { other.Close() })
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	adminPort, _ := strconv.Atoi(p)
	ns := nodes(1, adminPort-8000) // n1's admin port is the one taken
	dir := filepath.Join(t.TempDir(), "run2")
	// A stand-in node that stays up: the failure is to be told from the
	// ports, not from the process exiting.
	bin := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = start(bin, dir, ns, true)
	if err == nil || !strings.Contains(err.Error(), ns[0].admin) || !strings.Contains(err.Error(), "--port-offset") {
		t.Fatalf("start on another cluster's admin port: %v, want an error naming %s and the way round it", err, ns[0].admin)
	}
	if alive(dir, "n1") {
		t.Error("n1 was left running")
	}
}

// TestTakenPortHintWithoutACluster: in a fresh checkout, whose run/
// holds no cluster yet, a taken port was answered with "make clean,
// then make run PORT_OFFSET=10000", and a warning that make clean
// deletes the cluster's mail: there is none, and make run with the
// offset alone does it.
func TestTakenPortHintWithoutACluster(t *testing.T) {
	t.Chdir(t.TempDir())
	taken := errors.New("admin port 127.0.0.1:8000 is taken: listen tcp 127.0.0.1:8000: bind: address already in use")
	got := portHint("run", taken)
	if !strings.Contains(got, "make run PORT_OFFSET=10000") || strings.Contains(got, "make clean") {
		t.Errorf("portHint = %q, want make run PORT_OFFSET=10000 without make clean", got)
	}
}
