package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReexecEnv(t *testing.T) {
	const madvise = "always [madvise] never\n"
	const marker = reexecMarker + "=1"
	cases := []struct {
		name    string
		environ []string
		mode    string
		slack   bool
		want    []string // nil: no re-execution
	}{
		{"added", []string{"HOME=/root"}, madvise, false, []string{"HOME=/root", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1", marker}},
		{"appended to other tunables", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2", "A=b"}, madvise, false,
			[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "A=b", marker}},
		{"empty variable", []string{"GLIBC_TUNABLES="}, madvise, false, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1", marker}},
		// glibc in secure mode empties the variable; the marker stops a loop
		{"already re-executed", []string{"GLIBC_TUNABLES=", marker}, madvise, true, nil},
		{"operator said no", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, madvise, false, nil},
		{"already on (after the re-execution)", []string{"GLIBC_TUNABLES=x=1:glibc.malloc.hugetlb=1"}, madvise, false, nil},
		{"THP never", []string{"HOME=/"}, "always madvise [never]\n", false, nil},
		{"THP always", nil, "[always] madvise never\n", false, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1", marker}},
		{"no THP in the kernel", nil, "", false, nil},
		{"slack only", []string{"HOME=/"}, "", true, []string{"HOME=/", marker}},
		{"slack, tunable set by the operator", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, madvise, true,
			[]string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0", marker}},
		{"both", []string{"HOME=/"}, madvise, true, []string{"HOME=/", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1", marker}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.environ)
			got := reexecEnv(c.environ, c.mode, c.slack)
			if !slices.Equal(got, c.want) {
				t.Fatalf("reexecEnv(%q, %q, %v) = %q, want %q", c.environ, c.mode, c.slack, got, c.want)
			}
			if !slices.Equal(in, c.environ) {
				t.Fatalf("reexecEnv changed its input to %q", c.environ)
			}
		})
	}
}

// TestServerProcessTuning starts real server processes and checks that
// each re-executed itself with the tunable, so that glibc backs the
// memtables with huge pages, and with the timer slack on every thread;
// and that --huge-pages=false --timer-slack=0 leaves both alone.
func TestServerProcessTuning(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the timer slack and the glibc tunable are Linux's")
	}
	// The tunable is checked only where the server would add it: the
	// kernel has THP, and the environment does not already set tunables.
	mode, err := os.ReadFile(thpModePath)
	thp := err == nil && !strings.Contains(string(mode), "[never]") && os.Getenv(tunablesEnv) == ""
	inherited := readSlack(t, "/proc/self/timerslack_ns")
	for _, on := range []bool{true, false} {
		p := &proc{id: "n1", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
		extra := []string{"--bootstrap", "--timer-slack=3ms"}
		wantSlack := 3 * time.Millisecond
		if !on {
			extra = []string{"--bootstrap", "--huge-pages=false", "--timer-slack=0"}
			wantSlack = inherited
		}
		p.start(t, extra...)
		p.waitLeader(t, 20*time.Second)
		pid := p.cmd.Process.Pid
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		has := slices.Contains(strings.Split(string(env), "\x00"), "GLIBC_TUNABLES=glibc.malloc.hugetlb=1")
		if thp && has != (on && cgoEnabled()) {
			t.Fatalf("huge pages %v: tunable in the server's environment = %v", on, has)
		}
		// A thread's slack shows under its ID at the top of /proc.
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil || len(tasks) < 2 {
			t.Fatalf("threads of the server: %v %v", tasks, err)
		}
		for _, task := range tasks {
			path := "/proc/" + task.Name() + "/timerslack_ns"
			if got := readSlack(t, path); got != wantSlack {
				t.Fatalf("tuning %v: %s = %v, want %v", on, path, got, wantSlack)
			}
		}
		p.stop(syscall.SIGTERM)
	}
}

func readSlack(t *testing.T, path string) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return time.Duration(ns)
}

// cgoEnabled reports whether this test binary, and so the server binary
// TestMain builds with the same environment, uses cgo.
func cgoEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "CGO_ENABLED" {
			return s.Value == "1"
		}
	}
	return false
}

// TestServerRefusesBadDurations checks that an out-of-range timer slack
// or body sync interval is a clear error before anything starts.
func TestServerRefusesBadSettings(t *testing.T) {
	for _, c := range []struct{ flag, v string }{
		{"--timer-slack", "-1ms"}, {"--timer-slack", "1s"},
		{"--body-sync-interval", "-1ms"}, {"--body-sync-interval", "101ms"},
		{"--raft-snapshot-interval", "100ms"}, {"--raft-snapshot-threshold", "0"}, {"--raft-trailing-logs", "0"},
		{"--min-free-space", "-1G"}, {"--min-free-space", "lots"}, {"--imap-cache-bytes", "-1"}, {"--imap-max-conns", "-1"}, {"--max-conns", "-5"}, {"--password-check-memory", "-1"},
		{"--cluster-tls-cert", "node.crt"}, {"--cluster-tls-ca", "ca.crt"}, {"--admin-tls-cert", "admin.crt"}, {"--admin-tls-key", "admin.key"}, {"--cluster-tls-mode", "mixed"}, {"--cluster-tls-mode", "require"}, {"--cluster-tls-mode", "loose"}, {"--submission", "127.0.0.1:0"}, {"--submissions", "127.0.0.1:0"}, {"--dkim", "example.com:s1"},
		{"--repair-interval", "-1s"}, {"--gc-interval", "-1s"}, {"--peer-poll-interval", "-1s"}, {"--repair-grace", "5s"},
		{"--admin-max-conns", "-1"}, {"--admin-max-conns-per-ip", "-1"},
	} {
		_, stderr, err := cli(t, "", "server", "--id", "n1", "--data", t.TempDir(), c.flag, c.v)
		if err == nil || !strings.Contains(stderr, c.flag) {
			t.Fatalf("%s %s: err %v, stderr %q", c.flag, c.v, err, stderr)
		}
	}
	// With --bootstrap, an R or W the directory would refuse: the first
	// member would otherwise retry writing it for ever.
	for _, c := range []struct{ flag, v string }{{"--replicas", "9"}, {"--replicas", "0"}, {"--write-quorum", "3"}} {
		_, stderr, err := cli(t, "", "server", "--id", "n1", "--data", t.TempDir(), "--bootstrap", c.flag, c.v)
		if err == nil || !strings.Contains(stderr, c.flag) {
			t.Fatalf("%s %s: err %v, stderr %q", c.flag, c.v, err, stderr)
		}
	}
}
