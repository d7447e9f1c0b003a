package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// exitCode is the exit status of a command cli ran: 0 for none.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("command did not run: %v", err)
	return -1
}

// statusCLI runs cluster status with args and returns its output; the
// command may exit 1 (a cluster that is not healthy) but must print the
// status all the same.
func statusCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, "", append([]string{"cluster", "status"}, args...)...)
	if code := exitCode(t, err); code > 1 || out == "" {
		t.Fatalf("cluster status %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
	}
	return out
}

const (
	upNode   = `{"id":"%s","role":"%s","suffrage":"voter","cluster_addr":"127.0.0.1:1","admin_addr":"127.0.0.1:2","reachable":true,"free_bytes":1000000,"total_bytes":2000000}`
	downNode = `{"id":"n3","role":"unreachable","suffrage":"voter","cluster_addr":"127.0.0.1:3","admin_addr":"127.0.0.1:4","reachable":false,"error":"connection refused"}`
)

func nodeJSON(id, role string) string {
	return fmt.Sprintf(upNode, id, role)
}

// TestClusterStatusExitsNonZeroWhenUnhealthy: a monitoring check runs
// cluster status and reads its exit status. It exited 0 with a node
// down, with no leader, on a removed node and with bodies short of R, so
// the check never fired. Not healthy now exits 1, with the status on
// stdout as before (valid JSON with --json) and one line on stderr that
// says what is wrong.
func TestClusterStatusExitsNonZeroWhenUnhealthy(t *testing.T) {
	three := `[` + nodeJSON("n1", "leader") + `,` + nodeJSON("n2", "follower") + `,` + nodeJSON("n3", "follower") + `]`
	for _, tc := range []struct {
		name, reply string
		code        int
		want        string // on stderr
	}{
		{"healthy", `{"leader":"n1","health":"healthy","self":"n1","nodes":` + three + `,"redundancy":{"bodies":10}}`, 0, ""},
		{"node down", `{"leader":"n1","health":"degraded","self":"n1","nodes":[` + nodeJSON("n1", "leader") + `,` + nodeJSON("n2", "follower") + `,` + downNode + `]}`,
			1, "degraded: n3 unreachable"},
		{"no leader", `{"leader":"","health":"unavailable","self":"n2","nodes":[` + nodeJSON("n2", "candidate") + `,` + downNode + `]}`,
			1, "unavailable: no leader"},
		{"removed", `{"leader":"n1","health":"healthy","self":"n4","removed":true,"nodes":` + three + `}`,
			1, "n4 is no longer a member"},
		{"under R", `{"leader":"n1","health":"healthy","self":"n1","nodes":` + three + `,"redundancy":{"bodies":10,"under_replicated":3,"unrepairable":1}}`,
			1, "3 bodies under-replicated (1 unrepairable)"},
	} {
		rec := &recorder{reply: tc.reply}
		addr := rec.start(t)
		for _, asJSON := range []bool{false, true} {
			args := []string{"cluster", "status", "--addr", addr}
			if asJSON {
				args = append(args, "--json")
			}
			out, errOut, err := cli(t, "", args...)
			if code := exitCode(t, err); code != tc.code {
				t.Errorf("%s (json %v): exit %d, want %d; stderr %q", tc.name, asJSON, code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || (tc.want == "") != (errOut == "") {
				t.Errorf("%s (json %v): stderr %q, want one line with %q", tc.name, asJSON, errOut, tc.want)
			}
			var st map[string]any
			if asJSON && json.Unmarshal([]byte(out), &st) != nil {
				t.Errorf("%s: --json printed no JSON: %q", tc.name, out)
			}
			if !asJSON && !strings.Contains(out, "SUFFRAGE") {
				t.Errorf("%s: no table: %q", tc.name, out)
			}
		}
	}
}
