package check

import (
	"sort"
	"strings"
)

// canonFlags returns the canonical form of a flag set: lower-cased (IMAP
// flags are case-insensitive), without \Recent (session-specific), sorted,
// de-duplicated and joined by spaces.
func canonFlags(flags []string) string {
	set := map[string]bool{}
	for _, f := range flags {
		f = strings.ToLower(strings.TrimSpace(f))
		if f != "" && f != `\recent` {
			set[f] = true
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// applyFlags applies a store-flags mode to canonical sets.
func applyFlags(state, mode, flags string) string {
	switch mode {
	case ModeSet:
		return flags
	case ModeAdd:
		return canonFlags(append(strings.Fields(state), strings.Fields(flags)...))
	case ModeRemove:
		drop := map[string]bool{}
		for _, f := range strings.Fields(flags) {
			drop[f] = true
		}
		var keep []string
		for _, f := range strings.Fields(state) {
			if !drop[f] {
				keep = append(keep, f)
			}
		}
		return strings.Join(keep, " ")
	}
	return state
}

func validMode(mode string) bool {
	return mode == ModeAdd || mode == ModeRemove || mode == ModeSet
}
