package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"powermail/node"
)

func newMailboxCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "mailbox", Short: "Manage mailboxes"}
	cmd.AddCommand(mailboxAddCmd(cl), mailboxImportCmd(cl), mailboxLsCmd(cl), mailboxPasswdCmd(cl), mailboxQuotaCmd(cl),
		mailboxEnableCmd(cl, "enable", true), mailboxEnableCmd(cl, "disable", false), mailboxExportCmd(cl), mailboxRestoreCmd(cl))
	cmd.AddCommand(&cobra.Command{
		Use: "rm ADDRESS", Aliases: []string{"remove"}, Short: "Delete a mailbox and its mail (mailbox export first keeps a copy), then name the forwards that still list it",
		Long: "Delete a mailbox and its mail. A large mailbox is emptied in raft entries of a bounded size first " +
			"(--raft-entry-messages), which for a million messages takes minutes: it waits up to " +
			clusterRemoveTimeout.String() + " unless --timeout is given. Meanwhile (at command encoding 10) mail for it is refused with " +
			"450 4.2.1 rather than accepted and removed with it; mailbox ls shows it as being removed. A removal that stopped part " +
			"way accepts mail again, and is finished by running it again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl.lengthen(cmd, clusterRemoveTimeout)
			if err := cl.do(cmd.Context(), "DELETE", "/v1/mailboxes/"+pathEsc(args[0]), nil, nil); err != nil {
				return err
			}
			warnForwardsTo(cmd, cl, args[0])
			return cl.done(cmd, "removed mailbox %s", args[0])
		},
	})
	return cmd
}

// warnForwardsTo tells, on stderr, which forwards still name a removed
// mailbox: delivery skips it, so mail for a forward with no other target
// is refused from now on. A failed lookup only says so.
func warnForwardsTo(cmd *cobra.Command, cl *clientFlags, addr string) {
	const shown = 20
	var fws []node.ForwardView
	if err := cl.do(cmd.Context(), "GET", "/v1/forwards?target="+queryEsc(addr)+"&limit="+strconv.Itoa(shown+1), nil, &fws); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: could not list the forwards that name %s: %v\n", addr, err)
		return
	}
	if len(fws) == 0 {
		return
	}
	names := make([]string, 0, shown)
	for _, f := range fws[:min(len(fws), shown)] {
		names = append(names, f.Address)
	}
	more := ""
	if len(fws) > shown {
		more = ", and more (forward ls --target " + addr + ")"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "warning: forwards still name %s and skip it from now on: %s%s\n", addr, strings.Join(names, ", "), more)
}

func mailboxAddCmd(cl *clientFlags) *cobra.Command {
	var password, quota string
	var noPassword, ifNotExists bool
	cmd := &cobra.Command{
		Use: "add ADDRESS", Short: "Create a mailbox (password from --password or the first line of stdin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := node.MailboxRequest{Address: args[0]}
			var err error
			if req.QuotaBytes, err = parseSize(quota); err != nil {
				return err
			}
			if !noPassword {
				if req.Password, err = passwordFrom(cmd, password, "--password, stdin, or --no-password"); err != nil {
					return err
				}
			}
			err = cl.do(cmd.Context(), "POST", "/v1/mailboxes", req, nil)
			existed := err != nil && ifNotExists && alreadyExists(err)
			if err != nil && !existed {
				return err
			}
			if existed {
				if err := notBeingRemoved(cmd, cl, args[0]); err != nil {
					return err
				}
			} else {
				warnForwardTakesMail(cmd, cl, args[0])
			}
			return mailboxAdded(cmd, cl, args[0], ifNotExists, existed)
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "password (default: read the first line of stdin)")
	cmd.Flags().BoolVar(&noPassword, "no-password", false, "create the mailbox without a password (no logins until one is set)")
	cmd.Flags().StringVar(&quota, "quota", "0", "quota in bytes, or with a K, M, G or T suffix; 0 is unlimited")
	addIfNotExistsFlag(cmd, &ifNotExists, "the mailbox exists already; it is left as it is, its password and quota neither changed nor compared (one being removed is an error)")
	// Given both, the password was dropped without a word: a mailbox
	// nobody could log into, made by someone who set a password.
	cmd.MarkFlagsMutuallyExclusive("password", "no-password")
	return cmd
}

// ErrBeingRemoved: mailbox add --if-not-exists found the mailbox, but
// a removal of it is under way: it is about to go, so it is no success.
var ErrBeingRemoved = errors.New("is being removed")

// notBeingRemoved checks, for mailbox add --if-not-exists, that the
// mailbox found there is not being removed (mailbox rm of a large one
// marks it first): "already exists" would be followed by its removal.
// One gone since the add found it was removed meanwhile.
func notBeingRemoved(cmd *cobra.Command, cl *clientFlags, addr string) error {
	var mb node.MailboxView
	err := cl.do(cmd.Context(), "GET", "/v1/mailboxes/"+pathEsc(addr), nil, &mb)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Code == "not_found":
		return fmt.Errorf("mailbox %s %w: it was there, and is gone now; add it again", addr, ErrBeingRemoved)
	case err != nil:
		return fmt.Errorf("mailbox %s exists; reading whether it is being removed: %w", addr, err)
	case mb.Removing:
		return fmt.Errorf("mailbox %s %w (mailbox rm is emptying it); add it again once it is gone", addr, ErrBeingRemoved)
	}
	return nil
}

// mailboxAdded confirms a mailbox add. A mailbox that was there already
// (--if-not-exists) is left as it is: its password is not set, and not
// compared with the one given either, so the answer tells nothing about
// it (whoever may run the command need not know a user's password).
func mailboxAdded(cmd *cobra.Command, cl *clientFlags, addr string, ifNotExists, existed bool) error {
	switch {
	case cl.json && ifNotExists:
		return cl.emit(cmd, map[string]any{"status": "ok", "address": addr, "already_existed": existed}, nil, nil)
	case existed:
		return cl.done(cmd, "mailbox %s already exists; left as it is (password and quota not changed, nor compared)", addr)
	}
	return cl.done(cmd, "created mailbox %s", addr)
}

func mailboxPasswdCmd(cl *clientFlags) *cobra.Command {
	var password string
	cmd := &cobra.Command{
		Use: "passwd ADDRESS", Short: "Set a mailbox's password (from --password or stdin)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := passwordFrom(cmd, password, "--password or stdin")
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "POST", "/v1/mailboxes/"+pathEsc(args[0])+"/password", map[string]string{"password": pw}, nil); err != nil {
				return err
			}
			return cl.done(cmd, "password of %s changed", args[0])
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "new password (default: read the first line of stdin)")
	return cmd
}

func mailboxQuotaCmd(cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "quota ADDRESS SIZE", Short: "Set a mailbox's quota (bytes, or K/M/G/T; 0 is unlimited)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := parseSize(args[1])
			if err != nil {
				return err
			}
			if err := cl.do(cmd.Context(), "POST", "/v1/mailboxes/"+pathEsc(args[0])+"/quota", map[string]int64{"quota_bytes": q}, nil); err != nil {
				return err
			}
			if q == 0 {
				return cl.done(cmd, "quota of %s set to unlimited", args[0])
			}
			return cl.done(cmd, "quota of %s set to %d bytes", args[0], q)
		},
	}
}

func mailboxEnableCmd(cl *clientFlags, verb string, enabled bool) *cobra.Command {
	short := "Allow logins to a mailbox again"
	if !enabled {
		short = "Stop logins to a mailbox; its open IMAP, POP3 and submission sessions end within the server's " +
			"--account-check-interval, and mail still arrives"
	}
	return &cobra.Command{
		Use: verb + " ADDRESS", Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.do(cmd.Context(), "POST", "/v1/mailboxes/"+pathEsc(args[0])+"/enabled", map[string]bool{"enabled": enabled}, nil); err != nil {
				return err
			}
			return cl.done(cmd, "mailbox %s: %sd", args[0], verb)
		},
	}
}

func mailboxLsCmd(cl *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "ls [DOMAIN]", Aliases: []string{"list"}, Short: "List mailboxes of one or every domain", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			all, err := perDomain[node.MailboxView](cmd, cl, args, "/v1/mailboxes", func(m node.MailboxView) string { return localKey(m.Address) })
			if err != nil {
				return err
			}
			return cl.emit(cmd, all, []string{"ADDRESS", "QUOTA", "USED", "MESSAGES", "LOGIN", "MAIL"}, func() (rows [][]string) {
				for _, m := range all {
					rows = append(rows, mailboxRow(m))
				}
				return rows
			})
		},
	}
}

// passwordFrom returns the flag's value, or the first line of stdin: on
// a terminal after a prompt, without echo. Without either, the error
// names the ways the command takes one (ways).
func passwordFrom(cmd *cobra.Command, flag, ways string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	line, tty, err := readHidden(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password: ")
	if !tty && err == nil {
		line, err = bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)).ReadString('\n')
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	if err != nil {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("invalid input: no password given (use %s)", ways)
	}
	return line, nil
}

// parseSize reads a byte count: "1048576", or a number with a unit of
// K, M, G or T (powers of 1024), optionally followed by "i" and "B":
// "512K", "10MiB", "2GB".
func parseSize(in string) (int64, error) {
	s := strings.TrimSuffix(strings.TrimSpace(strings.ToUpper(in)), "B")
	shift := 0
	if unit := strings.TrimSuffix(s, "I"); unit != "" {
		if i := strings.IndexByte("KMGT", unit[len(unit)-1]); i >= 0 {
			shift, s = 10*(i+1), unit[:len(unit)-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64>>shift {
		return 0, fmt.Errorf("invalid input: size %q (bytes, or a number with K, M, G or T)", in)
	}
	return v << shift, nil
}

// mailboxRow is m's line of mailbox ls. QUOTA and USED are in the same
// binary units, for a person to compare; --json keeps both exact.
func mailboxRow(m node.MailboxView) []string {
	login := "yes"
	if m.Disabled || !m.HasPassword {
		login = "no"
	}
	return []string{m.Address, formatQuota(m.QuotaBytes), humanBytes(uint64(max(m.UsedBytes, 0))), fmt.Sprint(m.Messages), login, mailColumn(m)}
}

// formatQuota is mailbox ls's QUOTA, in binary units for a person to
// read (2.0GiB, not 2147483648); --json keeps quota_bytes exact.
func formatQuota(q int64) string {
	if q <= 0 {
		return "unlimited"
	}
	return humanBytes(uint64(q))
}

func localKey(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(addr[:i])
	}
	return addr
}

// mailColumn is mailbox ls's MAIL: what becomes of mail to m, as
// delivery decides it (fsm resolution). A forward without keep_copy is
// followed before the mailbox is reached, so it takes the mail even of a
// mailbox being removed; when none of its targets is left, delivery
// skips them all and the address is unknown (550). Otherwise a removal
// emptying the mailbox (or one that stopped and left the mark) refuses
// its mail with 450 until it ends.
func mailColumn(m node.MailboxView) string {
	switch {
	case m.HasForward && !m.ForwardKeepsCopy && m.ForwardTargetsGone:
		return "refused: its forward's targets are gone"
	case m.HasForward && !m.ForwardKeepsCopy:
		// Its forward takes the mail (forward ls says where to).
		return "forwarded"
	case m.Removing:
		return "refused: being removed"
	case m.QuotaBytes > 0 && m.UsedBytes >= m.QuotaBytes:
		// RCPT answers 452 4.2.2 until mail is deleted or the quota
		// raised (a list it is a member of leaves it out, and the
		// sender is told).
		return "refused: over quota"
	case m.HasForward && m.ForwardTargetsGone:
		// Kept here, and sent on to nobody.
		return "accepted, its forward's targets are gone"
	case m.HasForward:
		// Its forward sends the mail on and keeps a copy here: the
		// mailbox still gets it all.
		return "accepted, forwarded a copy"
	}
	return "accepted"
}
