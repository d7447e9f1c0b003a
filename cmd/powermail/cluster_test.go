package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// A node that does not answer shows "-" in cluster status for what only
// it could tell, and has those fields absent (not 0) in --json.
func TestClusterStatusShowsDashesForAnUnreachableNode(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "cluster", "status", "--addr", p.admin) // healthy: exit 0
	// Joined but never started: it does not answer (and joins as a
	// non-voter, so the quorum stays).
	mustCLI(t, "cluster", "join", "ghost", freeAddr(t), freeAddr(t), "--addr", p.admin)
	// Not healthy: exit 1, and stderr names the node.
	if _, errOut, err := cli(t, "", "cluster", "status", "--addr", p.admin); exitCode(t, err) != 1 || !strings.Contains(errOut, "degraded: ghost unreachable") {
		t.Errorf("cluster status with a node down: %v %q", err, errOut)
	}
	var ghost, solo []string
	for _, l := range strings.Split(statusCLI(t, "--addr", p.admin), "\n") {
		switch f := strings.Fields(l); {
		case len(f) > 0 && f[0] == "ghost":
			ghost = f
		case len(f) > 0 && f[0] == "solo":
			solo = f
		}
	}
	// ID ROLE SUFFRAGE CLUSTER ADMIN LAST-CONTACT, then TERM to MISSING.
	if len(ghost) != 14 || strings.Join(ghost[6:], " ") != "- - - - - - - -" {
		t.Errorf("unreachable node's row: %q", ghost)
	}
	if len(solo) < 14 || solo[9] != "0" {
		t.Errorf("reachable node's row (0 bodies): %q", solo)
	}
	var st struct{ Nodes []map[string]any }
	if err := json.Unmarshal([]byte(statusCLI(t, "--json", "--addr", p.admin)), &st); err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Nodes {
		_, hasCommit := m["commit_index"]
		_, hasBodies := m["bodies"]
		if down := m["id"] == "ghost"; hasCommit == down || hasBodies == down {
			t.Errorf("--json node %v: commit_index given %v, bodies given %v", m["id"], hasCommit, hasBodies)
		}
	}
}

// A node removed while it runs says in cluster status that it is no
// longer a member and what to do, instead of "leader: -".
func TestClusterStatusOfARemovedNode(t *testing.T) {
	p := startSolo(t)
	q := &proc{id: "n2", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	q.start(t, "--join", p.admin)
	waitStatus(t, q.admin, 20*time.Second, func(s statusJSON) bool { return len(s.Nodes) == 2 && s.Health == "healthy" })
	mustCLI(t, "cluster", "remove", "n2", "--addr", p.admin)
	// It learns of its removal with the configuration entry that makes it.
	var out string
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out, "no longer a member") && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		out = statusCLI(t, "--addr", q.admin)
	}
	first, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(first, "this node (n2) is no longer a member of the cluster") || !strings.Contains(first, "stop it") ||
		!strings.Contains(out, "leader: solo") {
		t.Fatalf("cluster status of the removed node:\n%s", out)
	}
	// A monitoring check of the removed node fails.
	if _, errOut, err := cli(t, "", "cluster", "status", "--addr", q.admin); exitCode(t, err) != 1 || !strings.Contains(errOut, "n2 is no longer a member") {
		t.Errorf("cluster status of the removed node: %v %q", err, errOut)
	}
}

// cluster remove and mailbox rm wait up to an hour unless --timeout says
// otherwise: the node reads every body record twice on the way to a
// member's removal, and empties a large mailbox in many raft entries,
// either of which outlasts the usual 30 s. Their help says so.
func TestClusterRemoveTimeout(t *testing.T) {
	for _, tc := range []struct {
		cmd  []string
		args []string
		want time.Duration
	}{
		{[]string{"cluster", "remove", "n2"}, nil, clusterRemoveTimeout},
		{[]string{"cluster", "remove", "n2"}, []string{"--timeout", "5s"}, 5 * time.Second},
		{[]string{"mailbox", "rm", "a@example.com"}, nil, clusterRemoveTimeout},
		{[]string{"mailbox", "rm", "a@example.com"}, []string{"--timeout", "5s"}, 5 * time.Second},
	} {
		rec := &recorder{reply: `{"status":"ok"}`}
		cl := &clientFlags{}
		root := &cobra.Command{Use: "powermail"}
		cl.register(root)
		root.AddCommand(newClusterCmd(cl), newMailboxCmd(cl))
		root.SetArgs(append(append(tc.cmd, "--token", "t", "--addr", rec.start(t)), tc.args...))
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		if cl.timeout != tc.want || len(rec.calls) == 0 {
			t.Errorf("%v %v: timeout %v, want %v (requests %q)", tc.cmd, tc.args, cl.timeout, tc.want, rec.calls)
		}
	}
	if clusterRemoveTimeout < time.Hour {
		t.Errorf("cluster remove waits %v by default", clusterRemoveTimeout)
	}
	for _, c := range [][]string{{"cluster", "remove"}, {"mailbox", "rm"}} {
		if out := mustCLI(t, append(c, "--help")...); !strings.Contains(out, "--timeout") || !strings.Contains(out, "1h") {
			t.Errorf("%v --help does not tell its timeout:\n%s", c, out)
		}
	}
}
