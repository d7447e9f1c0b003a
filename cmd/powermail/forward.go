package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"powermail/fsm"
	"powermail/node"
)

func newForwardCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "forward", Short: "Manage forwards, aliases and catch-alls (@domain)"}
	var targets []string
	var keep, replace, ifNotExists bool
	add := &cobra.Command{
		Use: "add ADDRESS --to TARGET [--to TARGET...]", Short: "Forward mail for ADDRESS (\"@domain\" is a catch-all)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, to := range targets {
				// A list in one --to was refused as a local part that
				// holds "@", which does not say what to do.
				if strings.Contains(to, ",") {
					return fmt.Errorf("invalid input: --to %q: give each target its own --to", to)
				}
			}
			c := fsm.ForwardAdd{Address: args[0], Targets: targets, KeepCopy: keep, Replace: replace}
			var added node.ForwardAdded
			if err := cl.do(cmd.Context(), "POST", "/v1/forwards", c, &added); err != nil {
				if ifNotExists && alreadyExists(err) {
					return forwardThere(cmd, cl, args[0], targets, keep)
				}
				return err
			}
			if len(added.Targets) == 0 { // a node of an earlier release answers only "ok"
				added.Address, added.Targets = args[0], targets
			}
			if !keep {
				warnMailboxTaken(cmd, cl, added.Address)
			}
			if cl.json { // the forward as stored, as the table says
				added.Status = "ok"
				if ifNotExists {
					return cl.emit(cmd, forwardAddAnswer{ForwardAdded: added, AlreadyExisted: false}, nil, nil)
				}
				return cl.emit(cmd, added, nil, nil)
			}
			return cl.done(cmd, "forward %s -> %s", added.Address, strings.Join(added.Targets, ", "))
		},
	}
	add.Flags().StringArrayVar(&targets, "to", nil, "target address (repeatable)")
	add.Flags().BoolVar(&keep, "keep-copy", false, "also deliver to the mailbox ADDRESS")
	add.Flags().BoolVar(&replace, "replace", false, "replace ADDRESS's forward if it has one (targets and --keep-copy), in one step: mail to it is never refused in between")
	addIfNotExistsFlag(add, &ifNotExists, "ADDRESS has this forward already (the same targets and --keep-copy); one with others is left as it is, and exit 1")
	add.MarkFlagsMutuallyExclusive(ifNotExistsFlag, "replace")
	add.MarkFlagRequired("to")
	cmd.AddCommand(add)
	cmd.AddCommand(&cobra.Command{
		Use: "rm ADDRESS", Aliases: []string{"remove"}, Short: "Delete a forward", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.do(cmd.Context(), "DELETE", "/v1/forwards/"+pathEsc(args[0]), nil, nil); err != nil {
				return err
			}
			return cl.done(cmd, "removed forward %s", args[0])
		},
	})
	var target string
	ls := &cobra.Command{
		Use: "ls [DOMAIN] [--target ADDRESS]", Aliases: []string{"list"}, Short: "List forwards of one or every domain, or those that name a target", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []node.ForwardView
			var err error
			cut := false
			if target != "" {
				if len(args) > 0 {
					return fmt.Errorf("give a DOMAIN or --target, not both")
				}
				all, cut, err = forwardsTo(cmd, cl, target)
			} else {
				all, err = perDomain[node.ForwardView](cmd, cl, args, "/v1/forwards", func(f node.ForwardView) string { return localKey(f.Address) })
			}
			if err != nil {
				return err
			}
			if err := emitForwards(cmd, cl, all); err != nil {
				return err
			}
			if cut {
				// Printed, and then a failure: a script that acts on
				// every one would pass over the rest.
				return fmt.Errorf("%w: only the first %d forwards that name %s are shown, the most a node of an earlier release lists (forward ls DOMAIN lists all of a domain's)",
					ErrListCut, len(all), target)
			}
			return nil
		},
	}
	ls.Flags().StringVar(&target, "target", "", "list the forwards (and catch-alls) of every domain that name this address, say before mailbox rm (below command encoding 11 reads every forward; a node of an earlier release lists at most 10000, and then exit 1)")
	cmd.AddCommand(ls)
	return cmd
}

// forwardAddAnswer is forward add's JSON with --if-not-exists.
type forwardAddAnswer struct {
	node.ForwardAdded
	AlreadyExisted bool `json:"already_existed"`
}

// forwardThere answers forward add --if-not-exists whose address has a
// forward: a success if it has the targets and keep-copy asked for, else
// a failure that names what it has.
func forwardThere(cmd *cobra.Command, cl *clientFlags, addr string, targets []string, keep bool) error {
	f, err := existingForward(cmd, cl, addr)
	if err != nil {
		return err
	}
	if same := sameTargets(f, targets); !same || f.KeepCopy != keep {
		return forwardDiffers(f, same)
	}
	if cl.json {
		return cl.emit(cmd, forwardAddAnswer{ForwardAdded: node.ForwardAdded{Status: "ok", Address: f.Address, Targets: f.Targets}, AlreadyExisted: true}, nil, nil)
	}
	return cl.done(cmd, "forward %s -> %s already exists", f.Address, strings.Join(f.Targets, ", "))
}

// ErrListCut: a listing stopped at the most the node answers, and there
// may be more.
var ErrListCut = errors.New("listing cut short")

// emitForwards prints forwards as a table, or JSON.
func emitForwards(cmd *cobra.Command, cl *clientFlags, all []node.ForwardView) error {
	return cl.emit(cmd, all, []string{"ADDRESS", "TARGETS", "KEEP-COPY"}, func() (rows [][]string) {
		for _, f := range all {
			keep := "no"
			if f.KeepCopy {
				keep = "yes"
			}
			rows = append(rows, []string{f.Address, strings.Join(f.Targets, ","), keep})
		}
		return rows
	})
}

// forwardsTo lists every forward that names target, a page of
// maxForwardsTo at a time, each page after the last one's address. A
// node of an earlier release ignores after and answers the first page
// again: cut then says that only that page is listed.
func forwardsTo(cmd *cobra.Command, cl *clientFlags, target string) (all []node.ForwardView, cut bool, err error) {
	all = []node.ForwardView{}
	seen := map[string]bool{}
	after := ""
	for {
		var page []node.ForwardView
		path := "/v1/forwards?target=" + queryEsc(target) + "&limit=" + strconv.Itoa(maxForwardsTo) + "&after=" + queryEsc(after)
		if err := cl.do(cmd.Context(), "GET", path, nil, &page); err != nil {
			return nil, false, err
		}
		for _, f := range page {
			if seen[f.Address] {
				return all, true, nil
			}
			seen[f.Address] = true
			all = append(all, f)
		}
		if len(page) < maxForwardsTo {
			return all, false, nil
		}
		after = page[len(page)-1].Address
	}
}

// maxForwardsTo is the admin API's largest page.
const maxForwardsTo = 10000
