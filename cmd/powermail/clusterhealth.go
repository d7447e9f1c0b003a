package main

import (
	"errors"
	"fmt"
	"strings"

	"powermail/node"
)

// ErrNotHealthy: cluster status found the cluster other than healthy. The
// command prints the status as always and then exits 1, so that a
// monitoring check (cron, Nagios, Ansible) needs only the exit status.
var ErrNotHealthy = errors.New("cluster not healthy")

// healthProblems says what keeps st from being healthy, nothing when it
// is: the node asked was removed, a node does not answer or is full,
// there is no leader, or the leader's last scan found bodies with fewer
// than R healthy replicas. The nodes' corrupt and missing counts are not
// among them: they count since each node started, and what they found is
// repaired (a body left short shows as under-replicated).
func healthProblems(st node.ClusterStatus) []string {
	var out []string
	if st.Removed {
		out = append(out, fmt.Sprintf("%s is no longer a member (it was removed)", st.Self))
	}
	if st.Health != "healthy" {
		out = append(out, st.Health+": "+strings.Join(nodeProblems(st), ", "))
	}
	if r := st.Redundancy; r != nil && r.UnderReplicated > 0 {
		out = append(out, fmt.Sprintf("%d bodies under-replicated (%d unrepairable) at the last scan", r.UnderReplicated, r.Unrepairable))
	}
	return out
}

// nodeProblems names the leaderless state and each node that is down or
// full.
func nodeProblems(st node.ClusterStatus) []string {
	var out []string
	if st.Leader == "" {
		out = append(out, "no leader")
	}
	for _, m := range st.Nodes {
		switch {
		case !m.Reachable:
			out = append(out, m.ID+" unreachable")
		case m.Full():
			out = append(out, m.ID+" full")
		}
	}
	if len(out) == 0 {
		out = append(out, "see the nodes above")
	}
	return out
}

// healthError is the error cluster status ends with, nil when healthy.
func healthError(st node.ClusterStatus) error {
	if p := healthProblems(st); len(p) > 0 {
		return fmt.Errorf("%w: %s", ErrNotHealthy, strings.Join(p, "; "))
	}
	return nil
}

// headline is the health the table's first line shows: the nodes'
// health, and what else makes cluster status exit 1 with every node up
// (bodies short of R at the leader's last scan), so that the line does
// not say healthy above "cluster not healthy". --json keeps the nodes'
// health alone in its field, and the redundancy figures in theirs.
func headline(st node.ClusterStatus) string {
	r := st.Redundancy
	if r == nil || r.UnderReplicated == 0 {
		return st.Health
	}
	if st.Health == "healthy" {
		return fmt.Sprintf("under-replicated (%d bodies short of R; every node up)", r.UnderReplicated)
	}
	return fmt.Sprintf("%s, and under-replicated (%d bodies short of R)", st.Health, r.UnderReplicated)
}
