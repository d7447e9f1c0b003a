package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"powermail/node"
)

// errStatesDiffer: a state check found nodes whose directory states differ
// or that gave no digest; the command exits 1 after printing them.
var errStatesDiffer = errors.New("the state check failed")

// checkStateSlack is how much longer than --wait the request may take:
// committing the digest entry, and the answer.
const checkStateSlack = 30 * time.Second

func newCheckStateCmd(cl *clientFlags) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "check-state [--wait 1m]",
		Short: "Compare every node's directory state at one raft index (exit 1 if any differs or does not answer)",
		Long: "Commit a state-digest entry through raft; every node hashes (SHA-256) its whole directory state as it stood right " +
			"after that entry, in the background, and the node asked collects the digests, waiting up to --wait (at most " +
			node.MaxStateCheckWait.String() + "). Prints each node's index, digest and key count, then ALL EQUAL, or which nodes " +
			"differ from the digest most nodes hold and which did not answer in time. A large directory takes time to hash, " +
			"not memory. Needs command encoding 9.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if wait <= 0 {
				return fmt.Errorf("invalid input: --wait %v: give a duration above 0, say 1m", wait)
			}
			cl.lengthen(cmd, wait+checkStateSlack)
			var st node.StateCheck
			path := "/v1/cluster/check-state?wait=" + url.QueryEscape(wait.String())
			if err := cl.do(cmd.Context(), "POST", path, nil, &st); err != nil {
				return err
			}
			if err := cl.emit(cmd, st, []string{"NODE", "INDEX", "SHA256", "KEYS", "STATUS"}, func() (rows [][]string) {
				for _, r := range st.Nodes {
					rows = append(rows, digestRow(r))
				}
				return rows
			}); err != nil {
				return err
			}
			if !cl.json {
				fmt.Fprintln(cmd.OutOrStdout(), checkVerdict(st))
			}
			if !st.Equal {
				return fmt.Errorf("%w: %s", errStatesDiffer, checkVerdict(st))
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", node.DefaultStateCheckWait, "how long to wait for the nodes' digests")
	return cmd
}

func digestRow(r node.StateDigestReport) []string {
	if !r.Done || r.Error != "" {
		status := r.Error
		if status == "" {
			status = "no digest"
		}
		return []string{r.Node, "-", "-", "-", status}
	}
	return []string{r.Node, fmt.Sprint(r.Index), r.SHA256, fmt.Sprint(r.Keys), "ok"}
}

// checkVerdict is the check's last line.
func checkVerdict(st node.StateCheck) string {
	if st.Equal {
		return "ALL EQUAL"
	}
	var parts []string
	if len(st.Differ) > 0 {
		parts = append(parts, "DIFFER: "+strings.Join(st.Differ, ", "))
	}
	if len(st.Missing) > 0 {
		parts = append(parts, "NO ANSWER: "+strings.Join(st.Missing, ", "))
	}
	return strings.Join(parts, "; ")
}
