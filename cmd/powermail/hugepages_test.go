package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHugePagesEnv(t *testing.T) {
	const madvise = "always [madvise] never\n"
	cases := []struct {
		name    string
		environ []string
		mode    string
		want    []string // nil: no re-execution
	}{
		{"added", []string{"HOME=/root"}, madvise, []string{"HOME=/root", "GLIBC_TUNABLES=glibc.malloc.hugetlb=1", reexecEnv + "=1"}},
		{"appended to other tunables", []string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2", "A=b"}, madvise,
			[]string{"GLIBC_TUNABLES=glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1", "A=b", reexecEnv + "=1"}},
		{"empty variable", []string{"GLIBC_TUNABLES="}, madvise, []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1", reexecEnv + "=1"}},
		// glibc in secure mode empties the variable; the marker stops a loop
		{"already re-executed", []string{"GLIBC_TUNABLES=", reexecEnv + "=1"}, madvise, nil},
		{"operator said no", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=0"}, madvise, nil},
		{"already on (after the re-execution)", []string{"GLIBC_TUNABLES=x=1:glibc.malloc.hugetlb=1"}, madvise, nil},
		{"THP never", []string{"HOME=/"}, "always madvise [never]\n", nil},
		{"THP always", nil, "[always] madvise never\n", []string{"GLIBC_TUNABLES=glibc.malloc.hugetlb=1", reexecEnv + "=1"}},
		{"no THP in the kernel", nil, "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := hugePagesEnv(c.environ, c.mode)
			if !slices.Equal(got, c.want) {
				t.Fatalf("hugePagesEnv(%q, %q) = %q, want %q", c.environ, c.mode, got, c.want)
			}
		})
	}
}

// TestServerRunsWithHugePages starts a real server process and checks
// that it re-executed itself with the tunable, so that glibc backs the
// memtables with huge pages, and that --huge-pages=false leaves the
// environment alone.
func TestServerRunsWithHugePages(t *testing.T) {
	mode, err := os.ReadFile(thpModePath)
	if runtime.GOOS != "linux" || err != nil || strings.Contains(string(mode), "[never]") {
		t.Skip("needs Linux with transparent huge pages")
	}
	if os.Getenv(tunablesEnv) != "" {
		t.Skip("GLIBC_TUNABLES is set in the test environment")
	}
	for _, on := range []bool{true, false} {
		p := &proc{id: "n1", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
		extra := []string{"--bootstrap"}
		if !on {
			extra = append(extra, "--huge-pages=false")
		}
		p.start(t, extra...)
		p.waitLeader(t, 20*time.Second)
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		has := slices.Contains(strings.Split(string(env), "\x00"), "GLIBC_TUNABLES=glibc.malloc.hugetlb=1")
		if has != (on && cgoEnabled()) {
			t.Fatalf("huge pages %v: tunable in the server's environment = %v", on, has)
		}
		p.stop(syscall.SIGTERM)
	}
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
