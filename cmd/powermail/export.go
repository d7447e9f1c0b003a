package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"powermail/node"
)

// mailboxExportCmd writes a mailbox's folders as a Maildir++ tar archive
// (node/export.go says what is in it).
func mailboxExportCmd(cl *clientFlags) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export ADDRESS [--out FILE]",
		Short: "Write every folder of a mailbox as a Maildir++ tar archive (to stdout, or to --out)",
		Long: "Write every folder of a mailbox as a Maildir++ tar archive, as Dovecot and Courier read it: INBOX in Maildir/," +
			" other folders in Maildir/.Name/, messages in cur/ with their flags in the file name and keywords in dovecot-keywords." +
			" With --out the archive appears under FILE only once it is complete. The export has no time limit as a whole:" +
			" it gives up once nothing has moved for --timeout (" + streamIdleTimeout.String() + " unless given).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" && isTerminal(cmd.OutOrStdout()) {
				return errors.New("the archive would go to the terminal: give --out FILE, or redirect the output")
			}
			cl.lengthen(cmd, streamIdleTimeout)
			if out == "" {
				return exportTo(cmd.Context(), cl, args[0], cmd.OutOrStdout())
			}
			return exportFile(cmd, cl, args[0], out)
		},
	}
	c.Flags().StringVar(&out, "out", "", "write the archive to this file (created only when complete)")
	return c
}

// exportFile writes the archive next to path and renames it there once
// the node has sent all of it.
func exportFile(cmd *cobra.Command, cl *clientFlags, addr, path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".partial-*")
	if err != nil {
		// The temporary file's name is the CLI's own: name --out.
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("--out %s: cannot write the archive there: %w", path, err)
	}
	err = exportTo(cmd.Context(), cl, addr, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return cl.done(cmd, "exported %s to %s", addr, path)
}

// exportTo copies the node's archive to w. A node that fails after it
// began cuts the connection, so a short archive is an error here.
func exportTo(ctx context.Context, cl *clientFlags, addr string, w io.Writer) error {
	ctx, idle, stop := watchIdle(ctx, cl, "")
	defer stop()
	resp, err := cl.send(ctx, "GET", "/v1/mailboxes/"+pathEsc(addr)+"/export", nil)
	if err != nil {
		return orCause(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return cl.replyError(resp.Status, raw)
	}
	if _, err := io.Copy(w, idle.reader(resp.Body)); err != nil {
		return fmt.Errorf("export of %s broke off, the archive is incomplete: %w", addr, orCause(ctx, err))
	}
	return nil
}

// mailboxRestoreCmd adds the messages of a Maildir++ tar to a mailbox
// (node/import.go).
func mailboxRestoreCmd(cl *clientFlags) *cobra.Command {
	var maxSize, uidlFormat string
	c := &cobra.Command{
		Use:   "restore ADDRESS FILE.tar",
		Short: "Add the messages of a Maildir++ tar (from mailbox export, or a Dovecot/Courier Maildir) to a mailbox (\"-\" reads stdin)",
		Long: "Add the messages of a Maildir++ tar to a mailbox: folders are created as needed, flags come from the file names" +
			" (keywords from dovecot-keywords), the internal date from the file time. A message the folder already holds is skipped," +
			" so a restore that broke off can be run again. Messages over --max-message-size are counted and left out, and the command then" +
			" exits non-zero. INBOX messages keep the POP3 unique-ids of a Dovecot dovecot-uidlist (its P fields, else --pop3-uidl-format)," +
			" so POP3 clients that leave mail on the server do not download it again; this needs command encoding 17, and the" +
			" output counts the unique-ids kept and those that were not. The restore has no time limit as a whole: it gives up once nothing has moved for --timeout (" +
			streamIdleTimeout.String() + " unless given).",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			limit, err := parseSize(maxSize)
			if err != nil {
				return err
			}
			if limit == 0 { // the node would refuse its max_bytes, a name the operator never gave
				return fmt.Errorf("invalid input: --max-message-size %s: give a size above 0, say 50M", maxSize)
			}
			if _, err := node.ParsePOP3UIDLFormat(uidlFormat); err != nil {
				return fmt.Errorf("invalid input: --pop3-uidl-format: %w", err)
			}
			in, err := stdinData(cmd, "archive")
			if err != nil && args[1] == "-" {
				return err
			}
			if args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			cl.lengthen(cmd, streamIdleTimeout)
			token, err := cl.resolveToken()
			if err != nil {
				return err
			}
			// The node reads the archive as it restores it, and answers
			// once it has read the whole.
			ctx, idle, stop := watchIdle(cmd.Context(), cl, "")
			defer stop()
			path := "/v1/mailboxes/" + pathEsc(args[0]) + "/restore?max_bytes=" + strconv.FormatInt(limit, 10)
			if uidlFormat != "" {
				path += "&pop3_uidl_format=" + url.QueryEscape(uidlFormat)
			}
			resp, err := cl.sendBody(ctx, "POST", path, idle.reader(in), "application/x-tar", token)
			if err != nil {
				return orCause(ctx, err)
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(io.LimitReader(idle.reader(resp.Body), 1<<20))
			if err != nil {
				return fmt.Errorf("read reply: %w", orCause(ctx, err))
			}
			if resp.StatusCode/100 != 2 {
				return cl.replyError(resp.Status, raw)
			}
			var res node.RestoreResult
			if err := cl.decode(raw, &res); err != nil {
				return err
			}
			err = cl.emit(cmd, res, []string{"ADDED", "ALREADY-THERE", "TOO-LARGE", "FOLDERS-CREATED", "POP3-UIDLS-KEPT"}, func() [][]string {
				return [][]string{{fmt.Sprint(res.Added), fmt.Sprint(res.Duplicates), fmt.Sprint(res.TooLarge), strings.Join(res.Folders, ", "), fmt.Sprint(res.POP3UIDLsKept)}}
			})
			warnUIDLsNotKept(cmd, res)
			if err == nil && res.TooLarge > 0 {
				// Part of the archive is not in the mailbox: a script
				// that deletes the archive on success would lose it.
				return fmt.Errorf("%d message(s) larger than --max-message-size %s were not restored: run the restore again with a larger --max-message-size "+
					"(up to the node's --restore-max-bytes); the messages already restored are skipped", res.TooLarge, maxSize)
			}
			return err
		},
	}
	c.Flags().StringVar(&uidlFormat, "pop3-uidl-format", "", "the pop3_uidl_format of the Dovecot the tar comes from, for messages its dovecot-uidlist gives no P field: "+
		"%u (UID), %v (UIDVALIDITY), each with a width (0-prefixed: zero-padded; else cut to it) and X for lower-case hex, as Dovecot has them, %g (GUID), %f (file name), %% (default Dovecot's "+node.DefaultPOP3UIDLFormat+")")
	c.Flags().StringVar(&maxSize, "max-message-size", "50M", "skip (and count) messages larger than this (bytes, or K/M/G; at most the node's --restore-max-bytes, 1G by default)")
	return c
}

// warnUIDLsNotKept tells the operator of the POP3 unique-ids a restore
// could not keep: those clients download these messages again.
func warnUIDLsNotKept(cmd *cobra.Command, res node.RestoreResult) {
	w := cmd.ErrOrStderr()
	if res.POP3UIDLsNotKept > 0 {
		fmt.Fprintf(w, "warning: %d POP3 unique-id(s) from dovecot-uidlist were not kept: the cluster's command encoding is below 17 "+
			"(settings set --command-encoding 17, once every node runs this release, then run the same restore again: it gives the messages already there theirs)\n", res.POP3UIDLsNotKept)
	}
	if res.POP3UIDLsInvalid > 0 {
		fmt.Fprintf(w, "warning: %d POP3 unique-id(s) were not kept: not 1 to 70 characters from 0x21 to 0x7E (RFC 1939), or of this server's own form\n", res.POP3UIDLsInvalid)
	}
	if res.POP3UIDLsDuplicate > 0 {
		fmt.Fprintf(w, "warning: %d POP3 unique-id(s) were not kept: another message of INBOX has it (the first keeps it)\n", res.POP3UIDLsDuplicate)
	}
	if res.POP3UIDLsUnlisted > 0 {
		fmt.Fprintf(w, "note: %d INBOX message(s) are not in dovecot-uidlist and get new POP3 unique-ids\n", res.POP3UIDLsUnlisted)
	}
}
