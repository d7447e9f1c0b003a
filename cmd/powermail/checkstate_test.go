package main

import (
	"strings"
	"syscall"
	"testing"
)

// check-state prints each node's digest and ALL EQUAL on a healthy
// cluster, and names a stopped node and exits 1 once one is down.
func TestClusterCheckState(t *testing.T) {
	ps := startCluster(t)
	mustCLI(t, "domain", "add", "example.com", "--addr", ps[0].admin)
	for _, a := range []string{"a@example.com", "b@example.com"} {
		if _, errOut, err := cli(t, "pw-"+a+"\n", "mailbox", "add", a, "--addr", ps[1].admin); err != nil {
			t.Fatalf("mailbox add %s: %v %s", a, err, errOut)
		}
	}
	out := mustCLI(t, "cluster", "check-state", "--wait", "20s", "--addr", ps[2].admin)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || lines[4] != "ALL EQUAL" {
		t.Fatalf("check-state:\n%s", out)
	}
	var digest string
	for _, l := range lines[1:4] {
		f := strings.Fields(l)
		if len(f) != 5 || f[4] != "ok" || len(f[2]) != 64 || (digest != "" && f[2] != digest) {
			t.Fatalf("row %q in:\n%s", l, out)
		}
		digest = f[2]
	}

	t.Logf("check-state:\n%s", out)
	if _, errOut, err := cli(t, "", "cluster", "check-state", "--wait", "2h", "--addr", ps[0].admin); err == nil || !strings.Contains(errOut, "over 1h0m0s") {
		t.Fatalf("check-state --wait 2h: %v %s", err, errOut)
	}

	ps[2].stop(syscall.SIGTERM)
	out, errOut, err := cli(t, "", "cluster", "check-state", "--wait", "2s", "--addr", ps[0].admin)
	if err == nil || !strings.Contains(out, "NO ANSWER: n3") || !strings.Contains(errOut, "NO ANSWER: n3") {
		t.Fatalf("check-state with n3 down: %v\n%s\n%s", err, out, errOut)
	}
	t.Logf("check-state with n3 down:\n%s%s", out, errOut)
}
