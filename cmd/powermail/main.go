// Command powermail is the PowerMail server and its operator CLI. It only
// parses flags and wires packages together; behaviour lives in node, fsm,
// storage and frontend.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	cmd, err := newRoot().ExecuteContextC(ctx)
	stop()
	if err != nil {
		msg := oneLine(err)
		if strings.Contains(msg, " arg(s), ") { // cobra's "accepts 1 arg(s), received 0", "requires at least 1 arg(s), ..."
			msg += " (usage: " + cmd.UseLine() + ")" // which argument is missing
		}
		fmt.Fprintln(os.Stderr, "powermail: "+msg)
		os.Exit(1)
	}
}

// oneLine joins the non-blank lines of err's text with "; ", each
// trimmed (cobra's suggestions come as indented lines).
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

func newRoot() *cobra.Command {
	cl := &clientFlags{}
	root := &cobra.Command{
		Use:           "powermail",
		Short:         "PowerMail: a raft-replicated, clustered mail store",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Name() == "server" {
				return applyEnv(cmd.Flags(), nil)
			}
			given := cmd.Flags().Changed("timeout")
			if err := applyEnv(cmd.Flags(), clientEnvFor(cmd.Flags())); err != nil {
				return err
			}
			cl.timeoutFromEnv = !given && cmd.Flags().Changed("timeout")
			// net/http logs through the standard logger ("Unsolicited
			// response received on idle HTTP channel" from a mail port
			// at --addr): a client command fails in one line of its own.
			log.SetOutput(io.Discard)
			// A timeout of 0 would fail every request with a bare
			// "context deadline exceeded", as if the node were down.
			if cl.timeout <= 0 {
				return fmt.Errorf("invalid input: %s %v: give a duration above 0, say 30s", cl.timeoutName(), cl.timeout)
			}
			return nil
		},
	}
	// The client flags belong to the root, so that they may stand before
	// the command too (powermail --json cluster status).
	cl.register(root)
	// Runnable, so that cobra parses the flags before it looks for the
	// command: it took a mistyped flag's next word for the flag's value
	// ("powermail --jsno cluster status" failed on an unknown command
	// "status"), where the flag is what is wrong.
	root.Args = cobra.ArbitraryArgs
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		return unknownCommand(cmd, args[0])
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return flagValueError(err) })
	root.SetHelpCommand(helpCmd(root))
	root.AddCommand(newServerCmd(), newClusterCmd(cl), newDomainCmd(cl), newMailboxCmd(cl),
		newForwardCmd(cl), newSettingsCmd(cl), newStorageCmd(cl), newQueueCmd(cl))
	failUnknownSubcommands(root)
	return root
}

// clientEnv are the flags a client command reads from the environment.
// The server reads every one of its own; a client command no others, so
// that a server's settings kept in the environment (POWERMAIL_REPLICAS,
// POWERMAIL_WRITE_QUORUM) never change the cluster through settings set,
// nor does a stray POWERMAIL_FORCE force a removal.
var clientEnv = map[string]bool{"addr": true, "token": true, "token-file": true, "ca": true, "timeout": true}

// clientEnvFor is clientEnv without the token's two sources once either
// is given on the command line: a flag wins over the environment, and
// --token-file given with POWERMAIL_TOKEN set (a shell set up for another
// cluster) sent the environment's token, leaving the file unread.
func clientEnvFor(fs *pflag.FlagSet) map[string]bool {
	if !fs.Changed("token") && !fs.Changed("token-file") {
		return clientEnv
	}
	out := make(map[string]bool, len(clientEnv))
	for name := range clientEnv {
		out[name] = name != "token" && name != "token-file"
	}
	return out
}

// failUnknownSubcommands makes every command group fail on a word that
// names none of its commands (and when given none): cobra would print
// the group's help and exit 0, and a script would take a mistyped
// "domain delete" for done.
func failUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		failUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() || !cmd.HasParent() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return fmt.Errorf("%s needs a command: %s", cmd.CommandPath(), subcommandNames(cmd))
		}
		return fmt.Errorf("unknown command %q for %q (commands: %s)", args[0], cmd.CommandPath(), subcommandNames(cmd))
	}
}

// noArgs refuses any argument to a command that takes none. cobra.NoArgs
// calls a stray word an unknown command, which sends the operator looking
// for a subcommand that was never there.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q (usage: %s)", cmd.CommandPath(), strings.Join(args, " "), cmd.UseLine())
	}
	return nil
}

// helpCmd is "powermail help [command]". cobra's own prints the root's
// help and exits 0 for a topic that names no command, now that the root
// takes arguments.
func helpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(_ *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return fmt.Errorf("unknown help topic %q (commands: %s)", strings.Join(args, " "), subcommandNames(root))
			}
			return cmd.Help()
		},
		// Completes command names, as cobra's own help command does.
		ValidArgsFunction: func(_ *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() && strings.HasPrefix(c.Name(), prefix) {
					names = append(names, c.Name()+"\t"+c.Short)
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
	}
}

// unknownCommand is cobra's own refusal of a word that names no command
// of the root, with its suggestions.
func unknownCommand(cmd *cobra.Command, word string) error {
	msg := fmt.Sprintf("unknown command %q for %q", word, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which it sets only on its own path
	}
	if s := cmd.SuggestionsFor(word); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	} else {
		msg += " (commands: " + subcommandNames(cmd) + ")" // as a command group says
	}
	return errors.New(msg)
}

// flagValueError says what a flag wants in place of the parser's
// complaint (strconv.ParseInt: parsing "abc": invalid syntax; time:
// missing unit in duration "5").
func flagValueError(err error) error {
	var iv *pflag.InvalidValueError
	if !errors.As(err, &iv) {
		return err
	}
	return fmt.Errorf("invalid input: --%s %q: want %s", iv.GetFlag().Name, iv.GetValue(), valueWanted(iv.GetFlag().Value.Type(), err))
}

// valueWanted describes a flag value of type kind, for an error that
// refused one; err itself for a type of this command's own.
func valueWanted(kind string, err error) string {
	switch kind {
	case "int", "int8", "int16", "int32", "int64":
		if errors.Is(err, strconv.ErrRange) {
			return "a whole number in range"
		}
		return "a whole number"
	case "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number from 0"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "duration":
		return "a duration with a unit, say 30s or 5m (units ms, s, m, h)"
	}
	if u := errors.Unwrap(err); u != nil {
		return "a valid value (" + u.Error() + ")"
	}
	return "a valid value"
}

func subcommandNames(cmd *cobra.Command) string {
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return strings.Join(names, ", ")
}

// applyEnv fills every flag not given on the command line from
// POWERMAIL_<FLAG>, with dashes as underscores (--secret-file reads
// POWERMAIL_SECRET_FILE); with only, just the flags it names.
func applyEnv(fs *pflag.FlagSet, only map[string]bool) error {
	var errs []error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || (only != nil && !only[f.Name]) {
			return
		}
		name := "POWERMAIL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(name)
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("invalid input: %s %q: want %s", name, v, valueWanted(f.Value.Type(), err)))
		}
		f.Changed = true
	})
	return errors.Join(errs...)
}
