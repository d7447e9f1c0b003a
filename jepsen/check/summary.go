package check

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
)

// Summary formats results as a plain-text table (checker, verdict, counts),
// followed by the example errors and artifacts of every failed checker and
// an overall verdict line.
func Summary(results []Result) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECKER\tVERDICT\tCOUNTS")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, verdict(r.Valid), formatCounts(r.Counts))
	}
	tw.Flush()
	failures := false
	for _, r := range results {
		failures = writeFailure(&b, r) || failures
	}
	if failures {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "overall: %s\n", verdict(AllValid(results)))
	return b.String()
}

func verdict(valid bool) string {
	if valid {
		return "PASS"
	}
	return "FAIL"
}

func formatCounts(counts map[string]int) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, counts[k])
	}
	return strings.Join(parts, " ")
}

// writeFailure lists the errors and artifacts of a failed result and
// reports whether it wrote anything.
func writeFailure(b *strings.Builder, r Result) bool {
	if r.Valid || (len(r.Errors) == 0 && len(r.Artifacts) == 0) {
		return false
	}
	fmt.Fprintf(b, "\n%s:\n", r.Name)
	for _, e := range r.Errors {
		fmt.Fprintf(b, "  - %s\n", e)
	}
	for _, a := range r.Artifacts {
		fmt.Fprintf(b, "  see %s\n", a)
	}
	return true
}
