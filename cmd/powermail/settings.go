package main

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"powermail/fsm"
	"powermail/node"
)

func newSettingsCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "settings", Short: "Show or change cluster settings (replication factor R, write quorum W, command encoding, voter cap)"}
	cmd.AddCommand(&cobra.Command{
		Use: "show", Short: "Show cluster settings", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var s fsm.Settings
			if err := cl.do(cmd.Context(), "GET", "/v1/settings", nil, &s); err != nil {
				return err
			}
			return cl.emit(cmd, s, []string{"REPLICAS", "WRITE-QUORUM", "COMMAND-ENCODING", "MAX-VOTERS"}, func() [][]string {
				return [][]string{{fmt.Sprint(s.Replicas), fmt.Sprint(s.WriteQuorum), fmt.Sprint(s.CommandEncoding), maxVoters(s)}}
			})
		},
	})
	var r, w, enc, voters int
	var force bool
	set := &cobra.Command{
		Use:   "set [--replicas R] [--write-quorum W] [--command-encoding E] [--max-voters N]",
		Short: "Change settings; the others keep their values (W defaults to R when only R is given)",
		Long: "Change R, W or the raft command encoding. --replicas without --write-quorum sets W to R as well (every delivery then waits for R copies); give both for another W. --command-encoding " + fmt.Sprint(fsm.NewestEncoding) +
			" lets deliveries use the compact binary command, keeps forwarded mail's DSN parameters (3) and has IMAP and POP3 commands name the folder they were meant for (4) and seals plain cluster connections, refusing the older handshake (5) and lets forward add --replace change a forward in one step (6) and refuses a forward that loops through a catch-all or a sub-address (7) and has a COPY retried after a leader change copy once (8) and lets cluster check-state compare the nodes' states (9) and refuses mail (450) to a mailbox while mailbox rm empties it (10) and refuses a forward that makes a chain deeper than delivery follows, keeps two settings changes made at once through two nodes, and refuses new mail to a folder that has given its last UID (11) and keeps a queue retry against a notice recorded just after it and keeps mail refused while any of several mailbox rm of one mailbox runs (12) and refuses new mailbox and forward names with invisible, control or unassigned characters or a non-ASCII domain, and stores them in NFC (13) and lets a refused mailbox rm end only its own hold on the mailbox's removal mark and a repeated COPY piece answer its UIDs (14) and queues notices and bounces to, and users' mail for, addresses whose local part is past 64 octets (15) and keeps a message put into a folder that a failed RENAME INBOX or CREATE takes back, instead of deleting it with the folder (16) and lets mailbox restore keep the POP3 unique-ids of a Dovecot INBOX (17); raise it only once every node runs a release that reads it." +
			" --max-voters caps the raft voters (5 in a new cluster, none in one created before the setting; it needs command encoding 3);" +
			" further nodes join as non-voters, and the leader promotes one when a voter leaves or stays down.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := cmd.Flags()
			if !flags.Changed("replicas") && !flags.Changed("write-quorum") && !flags.Changed("command-encoding") && !flags.Changed("max-voters") {
				return fmt.Errorf("nothing to change: give --replicas, --write-quorum, --command-encoding or --max-voters")
			}
			// Only the settings given are sent: the node keeps the others
			// as they are when it applies the change, so two operators
			// changing different settings do not undo each other.
			var req node.SettingsRequest
			if flags.Changed("replicas") {
				req.Replicas, req.WriteQuorum = &r, &r
			}
			if flags.Changed("write-quorum") {
				req.WriteQuorum = &w
			}
			if flags.Changed("command-encoding") {
				req.CommandEncoding = &enc
			}
			if flags.Changed("max-voters") {
				req.MaxVoters = &voters
			}
			req.Partial = true
			path := "/v1/settings"
			if force {
				path += "?force=1"
			}
			reply, err := postSettings(cmd, cl, path, req)
			if err != nil {
				return err
			}
			if reply.Warning != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", reply.Warning)
			}
			s := reply.Settings
			if s.Replicas == 0 { // a node of an older release answers only "ok"
				return cl.done(cmd, "settings changed")
			}
			if cl.json { // the settings that hold now, as the table says
				reply.Status = "ok"
				return cl.emit(cmd, reply, nil, nil)
			}
			return cl.done(cmd, "replicas %d, write quorum %d, command encoding %d, max voters %s", s.Replicas, s.WriteQuorum, s.CommandEncoding, maxVoters(s))
		},
	}
	set.Flags().IntVar(&r, "replicas", 0, "copies of each message body")
	set.Flags().IntVar(&w, "write-quorum", 0, "durable copies before acknowledging")
	set.Flags().IntVar(&enc, "command-encoding", 0, "newest raft command encoding to write (1 JSON, 2 binary, 3 binary and DSN parameters, 4 folder checks and this release's apply rules, 5 sealed cluster links, 6 forward replace, 7 forward loop checks through catch-alls and sub-addresses, 8 COPY once, 9 cluster check-state, 10 mail refused while mailbox rm empties a mailbox, 11 forward chain depth, merged settings updates and the UID limit, 12 queue retries kept and removal marks held per removal, 13 checked and NFC names, 14 a refused mailbox rm ends only its own hold on the mark and a repeated COPY piece answers its UIDs, 15 queue recipients with local parts past 64 octets, 16 conditional folder deletes for undos, 17 POP3 unique-ids kept by mailbox restore; 4 and up are not lowered again)")
	set.Flags().BoolVar(&force, "force", false, "raise the command encoding even if a node does not answer or cannot read it (that node stops until it is upgraded)")
	set.Flags().IntVar(&voters, "max-voters", 0, "raft voters at most (odd, 1 to 9; 0 for no cap; needs command encoding 3)")
	cmd.AddCommand(set)
	return cmd
}

func queryEsc(s string) string { return url.QueryEscape(s) }

// maxVoters shows the voter cap.
func maxVoters(s fsm.Settings) string {
	if s.MaxVoters == 0 {
		return "none"
	}
	return fmt.Sprint(s.MaxVoters)
}

// postSettings sends a partial settings update. A node of a release
// before partial updates refuses the request's "partial" field; it would
// have taken the settings left out as zero. To such a node the settings
// are sent whole, as that release's CLI did: read, the given ones laid
// over, written back (two updates at once through it may lose one).
func postSettings(cmd *cobra.Command, cl *clientFlags, path string, req node.SettingsRequest) (node.SettingsResult, error) {
	var reply node.SettingsResult
	err := cl.do(cmd.Context(), "POST", path, req, &reply)
	var api *apiError
	if !errors.As(err, &api) || api.Code != "invalid" || !strings.Contains(api.Message, `unknown field "partial"`) {
		return reply, err
	}
	var cur fsm.Settings
	if err := cl.do(cmd.Context(), "GET", "/v1/settings", nil, &cur); err != nil {
		return reply, err
	}
	reply = node.SettingsResult{}
	err = cl.do(cmd.Context(), "POST", path, req.Over(cur), &reply)
	return reply, err
}
