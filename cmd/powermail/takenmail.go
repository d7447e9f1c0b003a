package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/text/unicode/norm"

	"powermail/fsm"
	"powermail/node"
)

// A forward without --keep-copy takes all the mail of the address it
// stands on, also when that address is a mailbox's: the mailbox gets
// none while the forward stands (fsm resolution follows the forward and
// stops). Both orders are allowed (a mailbox kept for its old mail while
// new mail goes elsewhere is a real use), so forward add, mailbox add
// and mailbox import succeed, and say so on stderr. A failed lookup only says so: the
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
		warnTaken(cmd.ErrOrStderr(), addr, f)
	}
}

// warnTaken says that the mailbox addr gets none of its mail while the
// forward f stands.
func warnTaken(w io.Writer, addr string, f node.ForwardView) {
	fmt.Fprintf(w, "warning: mailbox %s gets none of its mail while the forward %s -> %s stands (with --keep-copy it gets a copy: forward add %s ... --keep-copy --replace)\n",
		addr, f.Address, strings.Join(f.Targets, ", "), f.Address)
}

// importTaken finds, for mailbox import, the imported mailboxes whose
// address a forward without --keep-copy stands on, and warns of each as
// mailbox add does. A file holds up to millions of rows, so it asks no
// question per row: it lists each domain's forwards once, when a batch
// with that domain's first row has been created, and keeps those that
// take a mailbox's mail (neither catch-alls nor keeping a copy). A
// forward made after its domain was listed is warned of by forward add.
type importTaken struct {
	// taken holds, by domain, the forwards that take all the mail of
	// their address, by address key (fsm.Address.Key); a domain listed
	// with none has an empty map, one whose listing failed nil.
	taken map[string]map[string]node.ForwardView
	// warned counts the warnings; past maxImportWarnings only counted.
	warned int
}

// maxImportWarnings bounds import's warnings of taken mailboxes: past
// it, a count closes the import.
const maxImportWarnings = 20

// check warns of the rows of a batch that was just created.
func (it *importTaken) check(cmd *cobra.Command, cl *clientFlags, rows []node.MailboxRequest) {
	for _, m := range rows {
		a, err := fsm.ParseAddress(m.Address)
		if err != nil {
			continue
		}
		byKey := it.forDomain(cmd, cl, a.Domain)
		f, ok := byKey[a.Key()]
		if !ok {
			// From command encoding 13 the mailbox is stored in NFC
			// whatever form the row spells it in, and a forward made
			// since is too: the forward of that spelling takes its mail.
			n, err := fsm.ParseAddress(norm.NFC.String(m.Address))
			if f, ok = byKey[n.Key()]; err != nil || !ok {
				continue
			}
		}
		if it.warned++; it.warned <= maxImportWarnings {
			warnTaken(cmd.ErrOrStderr(), m.Address, f)
		}
	}
}

// forDomain is domain's forwards that take a mailbox's mail, listed on
// first use. A failed listing only says so, once: the mailboxes were
// made, which is what was asked.
func (it *importTaken) forDomain(cmd *cobra.Command, cl *clientFlags, domain string) map[string]node.ForwardView {
	if byKey, listed := it.taken[domain]; listed {
		return byKey
	}
	if it.taken == nil {
		it.taken = map[string]map[string]node.ForwardView{}
	}
	fws, err := perDomain[node.ForwardView](cmd, cl, []string{domain}, "/v1/forwards", func(f node.ForwardView) string { return localKey(f.Address) })
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: could not list the forwards of %s to check for ones that take an imported mailbox's mail: %v\n", domain, err)
		it.taken[domain] = nil
		return nil
	}
	byKey := map[string]node.ForwardView{}
	for _, f := range fws {
		a, err := fsm.ParseForwardSource(f.Address)
		if err != nil || a.Local == "" || f.KeepCopy {
			continue
		}
		byKey[a.Key()] = f
	}
	it.taken[domain] = byKey
	return byKey
}

// done closes the warnings with the count of those left out.
func (it *importTaken) done(cmd *cobra.Command) {
	if more := it.warned - maxImportWarnings; more > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: and %d more imported mailboxes get none of their mail while forwards of their addresses stand (mailbox ls shows MAIL forwarded)\n", more)
	}
}

// isNotFound reports whether err is the node's not_found answer.
func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == "not_found"
}
