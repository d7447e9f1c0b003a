package check

import (
	"fmt"
	"time"
)

// Checker names, as they appear in Result.Name.
const (
	NameSetFull     = "set-full"
	NameUIDs        = "uids"
	NameDirectory   = "linearizable-directory"
	NameFlags       = "linearizable-flags"
	NameReplication = "replication"
)

// DefaultMaxErrors is the number of example errors kept when
// Options.MaxErrors is zero.
const DefaultMaxErrors = 20

// Result is the verdict of one checker.
type Result struct {
	Name   string         `json:"name"`
	Valid  bool           `json:"valid"`
	Counts map[string]int `json:"counts"`
	// Errors holds the first Options.MaxErrors violations, in a readable
	// form, followed by a line saying how many more there were.
	Errors []string `json:"errors,omitempty"`
	// Artifacts lists files the checker wrote (porcupine visualisations).
	Artifacts []string `json:"artifacts,omitempty"`
}

// Options tune the checkers. The zero value is usable.
type Options struct {
	// MaxErrors caps Result.Errors; 0 means DefaultMaxErrors.
	MaxErrors int
	// VisualizeDir, if set, is where the linearizability checkers write
	// porcupine's HTML visualisation of a failing history.
	VisualizeDir string
	// Timeout bounds each linearizability checker's search; 0 means no
	// limit. A search that times out makes the result invalid ("unknown").
	Timeout time.Duration
}

func (o Options) maxErrors() int {
	if o.MaxErrors > 0 {
		return o.MaxErrors
	}
	return DefaultMaxErrors
}

// collector accumulates counts and example errors for one checker. Any
// violation makes the result invalid.
type collector struct {
	name      string
	max       int
	counts    map[string]int
	errors    []string
	dropped   int
	invalid   bool
	artifacts []string
}

// newCollector starts every named count at zero, so that it is reported.
func newCollector(name string, opts Options, counts ...string) *collector {
	c := &collector{name: name, max: opts.maxErrors(), counts: map[string]int{}}
	for _, v := range counts {
		c.counts[v] = 0
	}
	return c
}

// add increments an informational count.
func (c *collector) add(count string, n int) { c.counts[count] += n }

// violation increments count, records an example and invalidates the result.
func (c *collector) violation(count, format string, args ...any) {
	c.counts[count]++
	c.invalid = true
	c.note(format, args...)
}

// note records an example error without touching counts.
func (c *collector) note(format string, args ...any) {
	if len(c.errors) >= c.max {
		c.dropped++
		return
	}
	c.errors = append(c.errors, fmt.Sprintf(format, args...))
}

func (c *collector) result() Result {
	errs := c.errors
	if c.dropped > 0 {
		errs = append(errs, fmt.Sprintf("... and %d more", c.dropped))
	}
	return Result{Name: c.name, Valid: !c.invalid, Counts: c.counts, Errors: errs, Artifacts: c.artifacts}
}

// malformed is the result of a checker whose input could not be used.
func malformed(name string, err error) Result {
	return Result{Name: name, Counts: map[string]int{"malformed": 1}, Errors: []string{err.Error()}}
}

// AllValid reports whether every result is valid. An empty list is not
// valid: a run that checked nothing proved nothing.
func AllValid(results []Result) bool {
	if len(results) == 0 {
		return false
	}
	for _, r := range results {
		if !r.Valid {
			return false
		}
	}
	return true
}

// CheckAll runs every history-based checker: set-full, UIDs, directory and
// flag linearizability, forwards. Replication is checked separately, from
// CheckReplication's own input.
func CheckAll(h History, opts Options) []Result {
	return []Result{
		CheckSetFull(h, opts),
		CheckUIDs(h, opts),
		CheckDirectory(h, opts),
		CheckFlags(h, opts),
		CheckForwards(h, opts),
	}
}
