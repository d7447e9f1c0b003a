package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"powermail/fsm"
)

func newSettingsCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "settings", Short: "Show or change cluster settings (replication factor R, write quorum W)"}
	cl.register(cmd)
	cmd.AddCommand(&cobra.Command{
		Use: "show", Short: "Show cluster settings", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s fsm.Settings
			if err := cl.do(cmd.Context(), "GET", "/v1/settings", nil, &s); err != nil {
				return err
			}
			return cl.emit(cmd, s, []string{"REPLICAS", "WRITE-QUORUM"}, func() [][]string {
				return [][]string{{fmt.Sprint(s.Replicas), fmt.Sprint(s.WriteQuorum)}}
			})
		},
	})
	var r, w int
	set := &cobra.Command{
		Use: "set --replicas R [--write-quorum W]", Short: "Change R and W (W defaults to R)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if w == 0 {
				w = r
			}
			s := fsm.Settings{Replicas: r, WriteQuorum: w}
			if err := cl.do(cmd.Context(), "POST", "/v1/settings", s, nil); err != nil {
				return err
			}
			return cl.done(cmd, "replicas %d, write quorum %d", r, w)
		},
	}
	set.Flags().IntVar(&r, "replicas", 0, "copies of each message body")
	set.Flags().IntVar(&w, "write-quorum", 0, "durable copies before acknowledging")
	set.MarkFlagRequired("replicas")
	cmd.AddCommand(set)
	return cmd
}

func queryEsc(s string) string { return url.QueryEscape(s) }
