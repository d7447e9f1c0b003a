package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"powermail/node"
)

// mailbox import reads CSV lines "address,password_hash[,quota_bytes]" and
// creates the mailboxes in batches, each batch one raft entry. Hashes must
// be argon2id or bcrypt: hashing a million passwords on import would take
// hours, and migrations bring their hashes along.
func mailboxImportCmd(cl *clientFlags) *cobra.Command {
	var batch int
	var noPassword bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: `Bulk-create mailboxes from CSV "address,password_hash[,quota_bytes]" ("-" reads stdin)`,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			n, err := importMailboxes(cmd, cl, in, batch, noPassword)
			if err != nil {
				return fmt.Errorf("after %d mailboxes: %w", n, err)
			}
			return cl.done(cmd, "imported %d mailboxes", n)
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 1000, "mailboxes per raft entry (at most 10000)")
	cmd.Flags().BoolVar(&noPassword, "allow-no-password", false, "accept rows without a password hash (mailboxes nobody can log into, for mail only)")
	return cmd
}

func importMailboxes(cmd *cobra.Command, cl *clientFlags, in io.Reader, batch int, noPassword bool) (int, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1
	r.Comment = '#'
	var pending []node.MailboxRequest
	total := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := cl.do(cmd.Context(), "POST", "/v1/mailboxes/batch", map[string]any{"mailboxes": pending}, nil)
		if err == nil {
			total += len(pending)
			pending = pending[:0]
		}
		return err
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return total, flush()
		}
		if err != nil {
			return total, fmt.Errorf("invalid input: %w", err)
		}
		m := node.MailboxRequest{Address: strings.TrimSpace(rec[0])}
		if len(rec) > 1 {
			m.PasswordHash = strings.TrimSpace(rec[1])
		}
		if m.PasswordHash == "" && !noPassword {
			return total, fmt.Errorf("invalid input: %s has no password hash (--allow-no-password creates mailboxes nobody can log into)", m.Address)
		}
		if len(rec) > 2 && strings.TrimSpace(rec[2]) != "" {
			if m.QuotaBytes, err = parseSize(strings.TrimSpace(rec[2])); err != nil {
				return total, fmt.Errorf("invalid input: quota of %s: %w", m.Address, err)
			}
		}
		pending = append(pending, m)
		if len(pending) >= batch {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
}
