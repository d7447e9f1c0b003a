package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"powermail/node"
)

// A forward without --keep-copy takes all the mail of the address it
// stands on, also when that address is a mailbox's: the mailbox gets
// none while the forward stands (fsm resolution follows the forward and
// stops). Both orders are allowed (a mailbox kept for its old mail while
// new mail goes elsewhere is a real use), so forward add and mailbox add
// succeed, and say so on stderr. A failed lookup only says so: the
// change itself is made.

// warnMailboxTaken tells, after forward add without --keep-copy, that
// the mailbox at addr (if there is one) gets none of its mail now.
func warnMailboxTaken(cmd *cobra.Command, cl *clientFlags, addr string) {
	if strings.HasPrefix(addr, "@") { // a catch-all has no mailbox of its own
		return
	}
	var mb node.MailboxView
	err := cl.do(cmd.Context(), "GET", "/v1/mailboxes/"+pathEsc(addr), nil, &mb)
	switch {
	case isNotFound(err):
	case err != nil:
		fmt.Fprintf(cmd.ErrOrStderr(), "note: could not check for a mailbox %s: %v\n", addr, err)
	default:
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: mailbox %s gets none of its mail while this forward stands (with --keep-copy it gets a copy: forward add %s ... --keep-copy --replace)\n", mb.Address, addr)
	}
}

// warnForwardTakesMail tells, after mailbox add, that a forward without
// --keep-copy at addr takes the new mailbox's mail.
func warnForwardTakesMail(cmd *cobra.Command, cl *clientFlags, addr string) {
	var f node.ForwardView
	err := cl.do(cmd.Context(), "GET", "/v1/forwards/"+pathEsc(addr), nil, &f)
	switch {
	case isNotFound(err):
	case err != nil:
		// A node of an earlier release has no route for one forward;
		// the mailbox was made, which is what was asked.
		fmt.Fprintf(cmd.ErrOrStderr(), "note: could not check for a forward %s: %v\n", addr, err)
	case !f.KeepCopy:
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: mailbox %s gets none of its mail while the forward %s -> %s stands (with --keep-copy it gets a copy: forward add %s ... --keep-copy --replace)\n",
			addr, f.Address, strings.Join(f.Targets, ", "), f.Address)
	}
}

// isNotFound reports whether err is the node's not_found answer.
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == "not_found"
}
