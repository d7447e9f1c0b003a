package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"powermail/node"
)

// clusterRemoveTimeout is how long cluster remove waits by default: the
// node reads every body record twice (node.Remove), 15 s a pass at ten
// million bodies here, and has one other copy of each of the removed
// node's bodies read back (about 75 µs a 4 KiB body here), so a large
// store outlasts the usual 30 s many times over.
const clusterRemoveTimeout = time.Hour

func newClusterCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Inspect and change cluster membership"}
	cmd.AddCommand(&cobra.Command{
		Use: "status", Short: "Show every node's role, addresses and indexes (exit 1 unless healthy)", Args: noArgs,
		Long: "Show every node's role, addresses, indexes and store figures, and the leader's view of body redundancy. " +
			"COPIES and COPY-BYTES are the body copies in the node's own store, those no message references any more " +
			"included until garbage collection deletes them; the redundancy line, like storage verify, counts each " +
			"referenced body once, whatever its copies, so with R copies each the COPIES of the nodes add up to about R " +
			"times that, plus the unreferenced copies. " +
			"Exits 0 when the cluster is healthy, and 1 after printing the status when it is not: the node asked was removed, " +
			"there is no leader, a node does not answer or is full, or the leader's last scan found bodies short of R healthy " +
			"replicas (stderr says which). Any other failure exits 1 too, with nothing on stdout.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st node.ClusterStatus
			if err := cl.do(cmd.Context(), "GET", "/v1/cluster/status", nil, &st); err != nil {
				return err
			}
			if !cl.json {
				if st.Removed {
					fmt.Fprintln(cmd.OutOrStdout(), removedNotice(st.Self))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "leader: %s   health: %s\n", orDash(st.Leader), headline(st))
				if r := st.Redundancy; r != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "redundancy: %s, %d under-replicated (%d unrepairable) at the last scan (%s), %d repairing; repaired %d, trimmed %d, moved %d since this leader started\n",
						referencedBodies(r.Bodies), r.UnderReplicated, r.Unrepairable, scanAge(r.LastScan), r.Repairing, r.Repaired, r.Trimmed, r.Moved)
				}
			}
			if err := cl.emit(cmd, st, []string{"ID", "ROLE", "SUFFRAGE", "CLUSTER", "ADMIN", "LAST-CONTACT", "TERM", "COMMIT", "APPLIED", "COPIES", "COPY-BYTES", "FREE", "CORRUPT", "MISSING"},
				func() (rows [][]string) {
					for _, m := range st.Nodes {
						rows = append(rows, memberRow(m))
					}
					return rows
				}); err != nil {
				return err
			}
			return healthError(st)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "join ID CLUSTER_ADDR [ADMIN_ADDR]", Short: "Add a node (idempotent)", Args: cobra.RangeArgs(2, 3),
		Long: "Add a node to the cluster; joining a member again with its addresses changes nothing. It joins as a voter, " +
			"or as a non-voter while it does not answer (not started yet, or a mistyped address) or the voters are at " +
			"the cap (settings set --max-voters); the leader makes a non-voter a voter once it has answered and kept up for 20 seconds, while the voters are below the cap.",
		RunE: func(cmd *cobra.Command, args []string) error {
			req := node.JoinRequest{ID: args[0], ClusterAddr: args[1]}
			if len(args) == 3 {
				req.AdminAddr = args[2]
			}
			if err := cl.do(cmd.Context(), "POST", "/v1/cluster/join", req, nil); err != nil {
				return err
			}
			return cl.done(cmd, "node %s is a member at %s", req.ID, req.ClusterAddr)
		},
	})
	var force bool
	remove := &cobra.Command{
		Use: "remove ID", Short: "Remove a node from the cluster",
		Long: "Remove a node from the cluster. The node checks every body record twice on the way (that none is left " +
			"without a healthy copy, and again once no delivery can list the removed node), and has one other copy of each " +
			"body the removed node holds read back and checked against its hash by the member holding it; a body whose " +
			"other copies all fail that is first copied from the removed node to another member, if it answers, and the " +
			"removal is refused otherwise. On a large store that takes minutes: it waits up to " +
			clusterRemoveTimeout.String() + " unless --timeout is given.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl.lengthen(cmd, clusterRemoveTimeout)
			req := map[string]any{"id": args[0], "force": force}
			if err := cl.do(cmd.Context(), "POST", "/v1/cluster/remove", req, nil); err != nil {
				return err
			}
			return cl.done(cmd, "node %s removed", args[0])
		},
	}
	remove.Flags().BoolVar(&force, "force", false, "remove a node even if the voters that answer without it are no majority of those that stay (the cluster then cannot commit until enough of them return), or if it holds the only healthy copy of some bodies (they are lost); no copy is read or made")
	cmd.AddCommand(remove)
	cmd.AddCommand(newCheckStateCmd(cl))
	return cmd
}

// removedNotice tells the operator who asks a removed node what it is
// and what to do with it.
func removedNotice(id string) string {
	return fmt.Sprintf("this node (%s) is no longer a member of the cluster (it was removed): stop it, "+
		"or take it back in with `powermail cluster join %s CLUSTER_ADDR ADMIN_ADDR --addr MEMBER_ADMIN_ADDR` "+
		"(its data directory can stay); below, the cluster as its members answer", id, id)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// memberRow is one node's line of cluster status. A node that did not
// answer shows "-" for what only it could tell: a 0 there would read as
// measured (an empty store, an index at the start of the log).
func memberRow(m node.MemberStatus) []string {
	known := func(v any) string {
		if !m.Reachable {
			return "-"
		}
		return fmt.Sprint(v)
	}
	return []string{m.ID, m.Role, m.Suffrage, m.ClusterAddr, orDash(m.AdminAddr), orDash(m.LastContact),
		known(m.Term), known(m.CommitIndex), known(m.AppliedIndex),
		known(m.Bodies), known(m.BodyBytes), freeColumn(m), known(m.Corrupt), known(m.Missing)}
}

// freeColumn is a node's free space, marked when it is down to its
// reserve and refusing new bodies; "-" when the node did not answer.
func freeColumn(m node.MemberStatus) string {
	if !m.Reachable {
		return "-"
	}
	if m.Full() {
		return humanBytes(m.FreeBytes) + " (full)"
	}
	return humanBytes(m.FreeBytes)
}

// scanAge says how long ago the leader last read every body record.
func scanAge(t time.Time) string {
	if t.IsZero() {
		return "none yet"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}
