package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"powermail/node"
)

// maintenanceTimeout is how long `storage repair` and `storage gc` wait
// by default: a round visits every body, which takes minutes in a large
// store, and the CLI's usual 30 s would cut it off half done.
const maintenanceTimeout = time.Hour

func newStorageCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "storage", Short: "Check and maintain body redundancy"}
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check that every referenced body has R verified replicas (exit 1 if any is short)",
		Long: `Every listed replica of every referenced body is read back and checked
chunk by chunk on the node that holds it. The count is of referenced
bodies, each once however many copies it has; cluster status's COPIES
counts the copies in each node's store, unreferenced ones not yet
collected included. Progress goes to stderr when
it is a terminal; the command fails if any body has fewer than R
replicas that verify, and gives up when the node sends no progress for
--timeout (1h unless given).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, cl) },
	})
	cmd.AddCommand(&cobra.Command{
		Use: "repair", Short: "Run a repair round on the leader now", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st map[string]any
			cl.lengthen(cmd, maintenanceTimeout)
			if err := cl.do(cmd.Context(), "POST", "/v1/storage/repair", nil, &st); err != nil {
				return err
			}
			// Counts as the node sent them: decoded as float64, a million
			// bodies printed as 1e+06.
			for k, v := range st {
				if f, ok := v.(float64); ok && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
					st[k] = int64(f)
				}
			}
			return cl.emit(cmd, st, []string{"FIELD", "VALUE"}, func() (rows [][]string) {
				for _, k := range []string{"bodies", "under_replicated", "unrepairable", "repaired_total", "trimmed_total", "moved_total", "status"} {
					if v, ok := st[k]; ok {
						rows = append(rows, []string{k, fmt.Sprint(v)})
					}
				}
				return rows
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "gc", Short: "Collect unreferenced bodies now (the leader runs the round; any node forwards)", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res struct {
				Bodies int64 `json:"bodies"`
				Freed  int64 `json:"freed_bytes"`
			}
			cl.lengthen(cmd, maintenanceTimeout)
			if err := cl.do(cmd.Context(), "POST", "/v1/storage/gc", nil, &res); err != nil {
				return err
			}
			if cl.json { // the figures, not only {"status":"ok"}
				return cl.emit(cmd, res, nil, nil)
			}
			return cl.done(cmd, "collected %d bodies, freed %s", res.Bodies, humanBytes(uint64(res.Freed)))
		},
	})
	return cmd
}

// runVerify streams the verification's progress lines and, on a
// terminal, draws a bar. A whole verification takes hours on a large
// store, so --timeout bounds the wait for each line instead (1h unless
// given: a node of an earlier release counts every body record before
// its first line; this release's sends a counting line meanwhile).
func runVerify(cmd *cobra.Command, cl *clientFlags) error {
	cl.lengthen(cmd, maintenanceTimeout)
	ctx, idle, stop := watchIdle(cmd.Context(), cl, " (storage verify waits that long for each progress line)")
	defer stop()
	resp, err := cl.send(ctx, "POST", "/v1/storage/verify", nil)
	if err != nil {
		return orCause(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return cl.replyError(resp.Status, raw) // "not authorised: ...", not the reply's JSON
	}
	bar := isTerminal(cmd.ErrOrStderr()) // into a pipe or a file, a bar is one long line
	var last node.VerifyProgress
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		idle.moved()
		var p node.VerifyProgress
		if err := cl.decode(lines.Bytes(), &p); err != nil {
			return fmt.Errorf("bad progress line: %w", err)
		}
		if p.Error != "" {
			return fmt.Errorf("verify failed: %s", p.Error)
		}
		last = p
		if bar {
			fmt.Fprintf(cmd.ErrOrStderr(), "\r%s", verifyBar(p))
		}
	}
	if bar {
		fmt.Fprintln(cmd.ErrOrStderr())
	}
	if err := lines.Err(); err != nil {
		return fmt.Errorf("verify cut off: %w", orCause(ctx, err))
	}
	if last.Counting {
		return fmt.Errorf("verify cut off while the node counted the bodies (%d so far)", last.Total)
	}
	if !last.Finished {
		return fmt.Errorf("verify cut off after %d of %d bodies", last.Done, last.Total)
	}
	if cl.json {
		out, _ := json.MarshalIndent(last, "", "  ")
		fmt.Fprintln(cmd.OutOrStdout(), string(out))
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), verifySummary(last))
		for _, h := range last.ShortBodies {
			fmt.Fprintf(cmd.OutOrStdout(), "  short: %s\n", h)
		}
		for id, k := range last.Unverified {
			fmt.Fprintf(cmd.OutOrStdout(), "  %d replicas on %s did not verify; first: %s\n", k, id, last.FirstErrors[id])
		}
	}
	if last.Short > 0 {
		return fmt.Errorf("%d bodies have fewer than R verified replicas", last.Short)
	}
	return nil
}

// verifySummary is the first line of a finished verification's report.
// It names what it counts, referenced bodies, each once with every
// listed copy read back, since cluster status's COPIES, a count of
// copies (unreferenced ones included), differs from it.
func verifySummary(p node.VerifyProgress) string {
	return fmt.Sprintf("%s checked (every listed copy of each read back), %d short of R verified replicas", referencedBodies(p.Done), p.Short)
}

// referencedBodies is "1 referenced body" or "n referenced bodies".
func referencedBodies(n int64) string {
	if n == 1 {
		return "1 referenced body"
	}
	return fmt.Sprintf("%d referenced bodies", n)
}

// verifyBar is the bar of a progress line, or while the node counts the
// bodies the count so far (a bar of 0 of a total that grows would say
// nothing), as wide as the bar so that the bar overwrites it.
func verifyBar(p node.VerifyProgress) string {
	bar := progressBar(p.Done, p.Total, 40)
	if !p.Counting {
		return bar
	}
	return fmt.Sprintf("%-*s", len(bar), fmt.Sprintf("counting bodies: %d", p.Total))
}

// progressBar renders "[=====     ]  50% 5/10".
func progressBar(done, total int64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	fill := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3d%% %d/%d", strings.Repeat("=", fill), strings.Repeat(" ", width-fill), int(frac*100), done, total)
}
