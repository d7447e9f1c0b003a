package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
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
			" With --out the archive appears under FILE only once it is complete. The export has no time limit unless --timeout is given.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" && isTerminal(cmd.OutOrStdout()) {
				return errors.New("the archive would go to the terminal: give --out FILE, or redirect the output")
			}
			cl.lengthen(cmd, 7*24*time.Hour)
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
		return err
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
	ctx, cancel := context.WithTimeout(ctx, cl.timeout)
	defer cancel()
	resp, err := cl.send(ctx, "GET", "/v1/mailboxes/"+pathEsc(addr)+"/export", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return replyError(resp.Status, raw)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("export of %s broke off, the archive is incomplete: %w", addr, err)
	}
	return nil
}
