package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"powermail/fsm"
)

func newDomainCmd(cl *clientFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "domain", Short: "Manage hosted domains"}
	cmd.AddCommand(domainAddCmd(cl))
	cmd.AddCommand(&cobra.Command{
		Use: "rm DOMAIN", Aliases: []string{"remove"}, Short: "Stop hosting an empty domain", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cl.do(cmd.Context(), "DELETE", "/v1/domains/"+pathEsc(args[0]), nil, nil); err != nil {
				return err
			}
			return cl.done(cmd, "removed domain %s", args[0])
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "ls", Aliases: []string{"list"}, Short: "List domains", Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := pages[fsm.Domain](cmd, cl, "/v1/domains?", func(d fsm.Domain) string { return d.Name })
			if err != nil {
				return err
			}
			return cl.emit(cmd, all, []string{"DOMAIN"}, func() (rows [][]string) {
				for _, d := range all {
					rows = append(rows, []string{d.Name})
				}
				return rows
			})
		},
	})
	return cmd
}

func domainAddCmd(cl *clientFlags) *cobra.Command {
	var ifNotExists bool
	cmd := &cobra.Command{
		Use: "add DOMAIN...", Short: "Host one or more domains", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			added, existed := []string{}, []string{}
			for i, d := range args {
				err := cl.do(cmd.Context(), "POST", "/v1/domains", fsm.DomainAdd{Name: d}, nil)
				if err != nil && ifNotExists && alreadyExists(err) {
					existed = append(existed, d)
					continue
				}
				if err != nil {
					return domainAddError(err, d, added, existed, args[i+1:])
				}
				added = append(added, d)
			}
			if !ifNotExists {
				return cl.done(cmd, "added %d domain(s)", len(added))
			}
			if cl.json {
				return cl.emit(cmd, map[string]any{"status": "ok", "added": added, "already_existed": existed}, nil, nil)
			}
			for _, d := range existed {
				fmt.Fprintf(cmd.OutOrStdout(), "domain %s already exists\n", d)
			}
			return cl.done(cmd, "added %d domain(s), %d already existed", len(added), len(existed))
		},
	}
	addIfNotExistsFlag(cmd, &ifNotExists, "a domain exists already (it is listed as already there)")
	return cmd
}

// domainAddError is the failure of domain add at domain d. The ones
// before it were added (or, with --if-not-exists, there already) and the
// ones after it not tried: without saying so, the operator runs the
// same command again and it stops on "already exists", or takes the
// ones after it for added.
func domainAddError(err error, d string, added, existed, rest []string) error {
	// The API's refusals name the domain already; other failures (the
	// network) need it.
	if !errors.As(err, new(*apiError)) {
		err = fmt.Errorf("domain %s: %w", d, err)
	}
	var notes []string
	if len(added) > 0 {
		notes = append(notes, "added before it: "+strings.Join(added, ", "))
	}
	if len(existed) > 0 {
		notes = append(notes, "already there: "+strings.Join(existed, ", "))
	}
	if len(rest) > 0 {
		notes = append(notes, "not tried: "+strings.Join(rest, ", "))
	}
	if len(notes) > 0 {
		err = fmt.Errorf("%w (%s)", err, strings.Join(notes, "; "))
	}
	return err
}

// pages fetches every page of a listing, following the last key.
func pages[T any](cmd *cobra.Command, cl *clientFlags, path string, key func(T) string) ([]T, error) {
	all := []T{}
	after := ""
	for {
		var page []T
		if err := cl.do(cmd.Context(), "GET", path+"limit=5000&after="+queryEsc(after), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < 5000 {
			return all, nil
		}
		after = key(page[len(page)-1])
	}
}

// perDomain lists path (mailboxes or forwards) for the given domain, or for
// every domain when none is given, following pages.
func perDomain[T any](cmd *cobra.Command, cl *clientFlags, domains []string, path string, key func(T) string) ([]T, error) {
	if len(domains) == 0 {
		ds, err := pages[fsm.Domain](cmd, cl, "/v1/domains?", func(d fsm.Domain) string { return d.Name })
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			domains = append(domains, d.Name)
		}
	}
	all := []T{}
	for _, d := range domains {
		page, err := pages[T](cmd, cl, path+"?domain="+queryEsc(d)+"&", key)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	return all, nil
}
