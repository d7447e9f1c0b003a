package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"powermail/fsm"
)

// newQueueCmd is `powermail queue ls|show|retry|drop`: the outbound queue
// of forwards to other providers and of bounces.
func newQueueCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Inspect and act on the outbound queue"}
	cmd.AddCommand(&cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List queued messages with age, attempts, next try and last error", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every page: one request returns at most 5,000 entries, and
			// a list cut there would pass for the whole queue.
			list, err := pages(cmd, cl, "/v1/queue?", func(e fsm.QueueEntry) string { return e.ID })
			if err != nil {
				return err
			}
			now := time.Now()
			return cl.emit(cmd, list, []string{"ID", "AGE", "FROM", "PENDING", "ATTEMPTS", "NEXT", "LAST-ERROR"}, func() (rows [][]string) {
				for _, e := range list {
					rows = append(rows, []string{e.ID, age(now, e.Created), orNull(e.From), strings.Join(e.Pending(), ","),
						strconv.Itoa(e.Attempts), next(now, e.NextAttempt), e.LastError})
				}
				return rows
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "show ID", Short: "Show one queued message (ID as queue ls shows it, or enough of its start, leading zeros optional)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := resolveQueueID(cmd, cl, args[0])
			if err != nil {
				return err
			}
			var e fsm.QueueEntry
			if err := cl.do(cmd.Context(), "GET", "/v1/queue/"+pathEsc(id), nil, &e); err != nil {
				return err
			}
			now := time.Now()
			return cl.emit(cmd, e, []string{"FIELD", "VALUE"}, func() [][]string {
				rows := [][]string{{"id", e.ID}, {"from", orNull(e.From)}, {"size", strconv.FormatInt(e.Size, 10)},
					{"age", age(now, e.Created)}, {"attempts", strconv.Itoa(e.Attempts)}, {"next", next(now, e.NextAttempt)},
					{"last-error", e.LastError}, {"lease", e.LeaseHolder}, {"body", e.Hash}}
				for _, r := range e.Recipients {
					rows = append(rows, []string{"rcpt " + r.Address, strings.TrimSpace(r.State + " " + r.Error)})
				}
				return rows
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "retry ID", Short: "Try a queued message again now", Args: cobra.ExactArgs(1),
		Long: "Make a queued message due now. The attempt connects even to a destination the leader skips after a failed " +
			"connection (--queue-host-down-time), so a destination just fixed is tried at once, and a success ends the skip. " +
			"From command encoding 12 a delay or failure notice recorded just after the retry does not undo it.",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := resolveQueueID(cmd, cl, args[0])
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "POST", "/v1/queue/"+pathEsc(id)+"/retry", nil, nil); err != nil {
				return err
			}
			return cl.done(cmd, "queue entry %s is due now", id)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "drop ID", Aliases: []string{"rm"}, Short: "Remove a queued message without a bounce", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := resolveQueueID(cmd, cl, args[0])
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "DELETE", "/v1/queue/"+pathEsc(id), nil, nil); err != nil {
				return err
			}
			return cl.done(cmd, "dropped queue entry %s", id)
		},
	})
	return cmd
}

func age(now time.Time, ms int64) string {
	return now.Sub(time.UnixMilli(ms)).Truncate(time.Second).String()
}

func next(now time.Time, ms int64) string {
	if d := time.UnixMilli(ms).Sub(now); d > 0 {
		return "in " + d.Truncate(time.Second).String()
	}
	return "now"
}

func orNull(from string) string {
	if from == "" {
		return "<>"
	}
	return fmt.Sprintf("<%s>", from)
}
