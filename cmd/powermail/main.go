// Command powermail is the PowerMail server and its operator CLI. It only
// parses flags and wires packages together; behaviour lives in node, fsm,
// storage and frontend.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "powermail: "+oneLine(err))
		os.Exit(1)
	}
}

func oneLine(err error) string {
	return strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "powermail",
		Short:         "PowerMail: a raft-replicated, clustered mail store",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return applyEnv(cmd.Flags())
		},
	}
	cl := &clientFlags{}
	root.AddCommand(newServerCmd(), newClusterCmd(cl), newDomainCmd(cl), newMailboxCmd(cl),
		newForwardCmd(cl), newSettingsCmd(cl), newStorageCmd(cl), newQueueCmd(cl))
	return root
}

// applyEnv fills every flag not given on the command line from
// POWERMAIL_<FLAG>, with dashes as underscores (--secret-file reads
// POWERMAIL_SECRET_FILE).
func applyEnv(fs *pflag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := "POWERMAIL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		f.Changed = true
	})
	return errors.Join(errs...)
}
