package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"powermail/fsm"
	"powermail/node"
)

// ifNotExistsFlag makes domain add, mailbox add and forward add succeed
// on an entry that is there already, as SQL's CREATE ... IF NOT EXISTS
// does: configuration management (Ansible, Puppet) then needs no match
// on the "already exists" text to run a play again.
const ifNotExistsFlag = "if-not-exists"

// ErrForwardDiffers: forward add --if-not-exists found a forward of that
// address with other targets (or keep-copy): it is left as it is.
var ErrForwardDiffers = errors.New("exists with other targets")

func addIfNotExistsFlag(cmd *cobra.Command, v *bool, what string) {
	cmd.Flags().BoolVar(v, ifNotExistsFlag, false, "succeed (exit 0, saying so) when "+what)
}

// alreadyExists reports whether err is the admin API's refusal of an
// add whose entry exists.
func alreadyExists(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.Code == "exists"
}

// existingForward reads the forward at addr. A node of an earlier
// release has no route for one forward (it answers 405, not in JSON):
// the forward is then looked for in its domain's listing.
func existingForward(cmd *cobra.Command, cl *clientFlags, addr string) (node.ForwardView, error) {
	var f node.ForwardView
	err := cl.do(cmd.Context(), "GET", "/v1/forwards/"+pathEsc(addr), nil, &f)
	if err == nil || errors.As(err, new(*apiError)) {
		return f, err
	}
	src, perr := fsm.ParseForwardSource(addr)
	if perr != nil {
		return f, err
	}
	all, lerr := perDomain[node.ForwardView](cmd, cl, []string{src.Domain}, "/v1/forwards", func(f node.ForwardView) string { return localKey(f.Address) })
	if lerr != nil {
		return f, lerr
	}
	for _, f := range all {
		if a, err := fsm.ParseForwardSource(f.Address); err == nil && a.Key() == src.Key() {
			return f, nil
		}
	}
	return f, fmt.Errorf("forward %s: said to exist, but not in its domain's listing (removed meanwhile?)", addr)
}

// sameTargets reports whether the forward f has the targets asked (each
// once, in any order, however spelt: fsm.Address.Key).
func sameTargets(f node.ForwardView, targets []string) bool {
	key := func(ts []string) []string {
		out := make([]string, 0, len(ts))
		for _, t := range ts {
			if a, err := fsm.ParseAddress(t); err == nil {
				t = a.Key()
			}
			out = append(out, t)
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(key(f.Targets), key(targets))
}

// forwardDiffers is the error of forward add --if-not-exists that found
// another forward f at the address; sameTargets: it differs only in
// keep-copy, which is then what it names.
func forwardDiffers(f node.ForwardView, sameTargets bool) error {
	keep := "no"
	if f.KeepCopy {
		keep = "yes"
	}
	if sameTargets {
		return fmt.Errorf("forward %s exists with these targets and keep-copy %s (%w): left as it is; use --replace to change it",
			f.Address, keep, ErrForwardDiffers)
	}
	return fmt.Errorf("forward %s %w (%s; keep-copy %s): left as it is; use --replace to change it",
		f.Address, ErrForwardDiffers, strings.Join(f.Targets, ", "), keep)
}
