package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"powermail/fsm"
	"powermail/node"
)

// mailbox import reads CSV lines "address,password_hash[,quota_bytes]" and
// creates the mailboxes in batches, each batch one raft entry. Hashes must
// be argon2id or bcrypt: hashing a million passwords on import would take
// hours, and migrations bring their hashes along.
func mailboxImportCmd(cl *clientFlags) *cobra.Command {
	var batch int
	var noPassword, skipExisting bool
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: `Bulk-create mailboxes from CSV "address,password_hash[,quota]" ("-" reads stdin)`,
		Long: `Bulk-create mailboxes from CSV "address,password_hash[,quota]" ("-" reads stdin), one mailbox a line.
Hashes are argon2id or bcrypt (quote an argon2id hash: its parameters hold commas), as "doveadm pw -s
BLF-CRYPT" or "htpasswd -nbB USER PASSWORD" (after the colon) make them; a Dovecot scheme prefix ({BLF-CRYPT}, {ARGON2ID}, {CRYPT}) is
dropped, any other refused by name. The quota is as for
mailbox add --quota (2G). A line with more than these three fields is refused, naming its line.
Blank lines are skipped, and so are comments: a line whose first non-blank character is "#" followed by
a blank or the end of the line ("# note"), or that starts with "#" and has no "@" in its first field
("#old"). "#" may begin an address (RFC 5322), so "#sales@example.com,..." is a mailbox; to comment out
a row, put "# " before it.
Each batch is one raft entry, created whole or not at all. If the import stops with its last batch's
outcome unknown (a timeout, a leader change), run it again with --skip-existing: the mailboxes that
already exist with the row's password hash are skipped and counted.
A mailbox whose address a forward without --keep-copy stands on gets none of its mail; as mailbox add,
import warns of each such mailbox on stderr (the first 20, then a count).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// The node refuses a larger batch, but only once the whole
			// file has been read into it.
			if batch < 1 || batch > maxImportBatch {
				return fmt.Errorf("invalid input: --batch %d: give 1 to %d", batch, maxImportBatch)
			}
			in, err := stdinData(cmd, "CSV")
			if err != nil && args[0] == "-" {
				return err
			}
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			opt := importOptions{batch: batch, noPassword: noPassword, skipExisting: skipExisting}
			res, err := importMailboxes(cmd, cl, in, opt)
			if err != nil && skipExisting {
				return fmt.Errorf("after %d mailboxes (and %d skipped): %w", res.Created, res.Skipped, err)
			}
			if err != nil {
				return fmt.Errorf("after %d mailboxes: %w", res.Created, err)
			}
			if cl.json { // the counts, as the line below gives them
				return cl.emit(cmd, struct {
					Status string `json:"status"`
					node.ImportResult
				}{"ok", res}, nil, nil)
			}
			if skipExisting {
				return cl.done(cmd, "imported %d mailboxes, skipped %d that already existed", res.Created, res.Skipped)
			}
			return cl.done(cmd, "imported %d mailboxes", res.Created)
		},
	}
	cmd.Flags().IntVar(&batch, "batch", 1000, fmt.Sprintf("mailboxes per raft entry (1 to %d)", maxImportBatch))
	cmd.Flags().BoolVar(&noPassword, "allow-no-password", false, "accept rows without a password hash (mailboxes nobody can log into, for mail only)")
	cmd.Flags().BoolVar(&skipExisting, "skip-existing", false, "resume an import that broke off: skip (and count) the mailboxes that already exist with the row's password hash; "+
		"one that exists with another hash stops the import (it is not this file's, or its password changed since); quotas are not compared")
	return cmd
}

// stdinData is stdin, for a command that reads a file from "-"; one
// that is a terminal is refused (what), since the command would wait,
// without a word, for an archive or a CSV to be typed.
func stdinData(cmd *cobra.Command, what string) (io.Reader, error) {
	in := cmd.InOrStdin()
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		return nil, fmt.Errorf("invalid input: stdin is a terminal: give a FILE, or send the %s in through a pipe or < FILE", what)
	}
	return in, nil
}

// maxImportBatch is the most mailboxes the admin API takes in one batch.
const maxImportBatch = fsm.MaxMailboxBatch

// importOptions are mailbox import's flags.
type importOptions struct {
	batch                    int
	noPassword, skipExisting bool
}

func importMailboxes(cmd *cobra.Command, cl *clientFlags, in io.Reader, opt importOptions) (node.ImportResult, error) {
	rows := &importRows{in: bufio.NewReader(in)}
	var pending []node.MailboxRequest
	var total node.ImportResult
	var taken importTaken
	defer taken.done(cmd)
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		req := node.BatchRequest{Mailboxes: pending, SkipExisting: opt.skipExisting}
		res := node.ImportResult{Created: len(pending)}
		var reply any // the count alone, without skip_existing
		if opt.skipExisting {
			reply = &res
		}
		err := cl.do(cmd.Context(), "POST", "/v1/mailboxes/batch", req, reply)
		if err == nil {
			total.Created += res.Created
			total.Skipped += res.Skipped
			taken.check(cmd, cl, pending)
			pending = pending[:0]
		}
		return err
	}
	for {
		rec, err := rows.next()
		if errors.Is(err, io.EOF) {
			return total, flush()
		}
		if err != nil {
			return total, fmt.Errorf("invalid input: %w", err)
		}
		m, err := importRow(rec, opt.noPassword)
		if err != nil {
			return total, fmt.Errorf("invalid input: line %d: %w", rows.line, err)
		}
		pending = append(pending, m)
		if len(pending) >= opt.batch {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
}

// importRow reads one row's fields: address, password hash, quota.
func importRow(rec []string, noPassword bool) (node.MailboxRequest, error) {
	if len(rec) > 3 {
		return node.MailboxRequest{}, fmt.Errorf("%d fields, want at most 3: address,password_hash[,quota_bytes]", len(rec))
	}
	m := node.MailboxRequest{Address: strings.TrimSpace(rec[0])}
	if len(rec) > 1 {
		h, err := stripScheme(strings.TrimSpace(rec[1]))
		if err == nil {
			// The node checks it too, but names only the mailbox, and
			// refuses the whole batch it came in.
			err = fsm.CheckPasswordHash(h)
		}
		if err != nil {
			return m, fmt.Errorf("password hash of %s: %w", m.Address, err)
		}
		m.PasswordHash = h
	}
	if m.PasswordHash == "" && !noPassword {
		return m, fmt.Errorf("%s has no password hash (--allow-no-password creates mailboxes nobody can log into)", m.Address)
	}
	if len(rec) > 2 && strings.TrimSpace(rec[2]) != "" {
		var err error
		if m.QuotaBytes, err = parseSize(strings.TrimSpace(rec[2])); err != nil {
			return m, fmt.Errorf("quota of %s: %w", m.Address, err)
		}
	}
	return m, nil
}

// dovecotSchemes are the password schemes of a Dovecot passwd file
// ("{BLF-CRYPT}$2y$...") whose hashes a mailbox takes as they are:
// bcrypt and argon2id, and CRYPT, which holds a bcrypt hash on a
// system whose crypt(3) has it (any other is refused by the directory).
var dovecotSchemes = map[string]bool{"BLF-CRYPT": true, "ARGON2ID": true, "CRYPT": true}

// stripScheme drops a Dovecot scheme prefix a mailbox can take, so that
// a migration need not edit its passwd file, and refuses one it cannot
// take by name: its users need new passwords.
func stripScheme(h string) (string, error) {
	rest, ok := strings.CutPrefix(h, "{")
	if !ok {
		return h, nil
	}
	scheme, hash, ok := strings.Cut(rest, "}")
	if !ok {
		return h, nil
	}
	if !dovecotSchemes[strings.ToUpper(scheme)] {
		return "", fmt.Errorf("%w: scheme {%s} (want argon2id or bcrypt, Dovecot's {ARGON2ID} or {BLF-CRYPT}; "+
			"other hashes cannot be converted: give those mailboxes new passwords)", fsm.ErrBadPasswordHash, scheme)
	}
	return hash, nil
}

// importRows reads the CSV one line a row, skipping blank lines and
// comments (importComment). A quoted field cannot span lines: no field
// of a row (an address, a hash, a quota) holds a line break.
type importRows struct {
	in   *bufio.Reader
	line int // of the row last returned
}

func (r *importRows) next() ([]string, error) {
	for {
		text, err := r.in.ReadString('\n')
		if text == "" && err != nil {
			return nil, err // io.EOF at the end
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		r.line++
		text = strings.TrimRight(text, "\r\n")
		if r.line == 1 {
			// A spreadsheet's UTF-8 byte order mark is no part of the
			// first address.
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if strings.TrimSpace(text) == "" || importComment(text) {
			continue
		}
		cr := csv.NewReader(strings.NewReader(text))
		cr.FieldsPerRecord = -1
		rec, err := cr.Read()
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", r.line, err)
		}
		return rec, nil
	}
}

// importComment reports whether a line is a comment: its first non-blank
// character is "#" followed by a blank or the end of the line ("# ...",
// "#"), or it starts with "#" and its first field holds no "@", so it
// cannot be an address ("#old rows"). Otherwise a "#" is part of the
// address: RFC 5322 §3.2.3 atext allows it in a local part
// ("#sales@example.com").
func importComment(line string) bool {
	t := strings.TrimLeft(line, " \t")
	rest, ok := strings.CutPrefix(t, "#")
	if !ok {
		return false
	}
	if rest == "" || rest[0] == ' ' || rest[0] == '\t' {
		return true
	}
	first, _, _ := strings.Cut(t, ",")
	return !strings.Contains(first, "@")
}
