package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// maxSamples is how many distinct error messages are kept per command.
const maxSamples = 3

type opStats struct {
	lat     []time.Duration // of the successful operations
	errs    int64
	samples []string
}

// recorder collects one session's results; it is not shared, sessions'
// recorders are merged at the end.
type recorder struct{ m map[string]*opStats }

func newRecorder() *recorder { return &recorder{m: map[string]*opStats{}} }

func (r *recorder) get(name string) *opStats {
	st := r.m[name]
	if st == nil {
		st = &opStats{}
		r.m[name] = st
	}
	return st
}

func (r *recorder) ok(name string, d time.Duration) {
	st := r.get(name)
	st.lat = append(st.lat, d)
}

func (r *recorder) fail(name string, err error) {
	st := r.get(name)
	st.errs++
	st.addSample(err.Error())
}

func (st *opStats) addSample(msg string) {
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if len(st.samples) < maxSamples && !slices.Contains(st.samples, msg) {
		st.samples = append(st.samples, msg)
	}
}

func (r *recorder) merge(o *recorder) {
	for name, x := range o.m {
		st := r.get(name)
		st.lat = append(st.lat, x.lat...)
		st.errs += x.errs
		for _, s := range x.samples {
			st.addSample(s)
		}
	}
}

// row is one line of the results.
type row struct {
	Command string  `json:"command"`
	Count   int     `json:"count"`
	Errors  int64   `json:"errors"`
	Rate    float64 `json:"ops_per_s"`
	P50     float64 `json:"p50_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
}

type report struct {
	Label    string              `json:"label,omitempty"`
	Mode     string              `json:"mode"`
	Targets  []string            `json:"targets"`
	Sessions int                 `json:"sessions"`
	Seconds  float64             `json:"seconds"`
	Commands []row               `json:"commands"`
	Total    row                 `json:"total"`
	Setup    []row               `json:"setup,omitempty"` // logins before the measured window
	Errors   map[string][]string `json:"error_samples,omitempty"`
	Prefill  *prefillResult      `json:"prefill,omitempty"`
}

// percentile returns the nearest-rank p-quantile (0 < p <= 1) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// makeRow summarises lat (sorted in place) over seconds.
func makeRow(name string, lat []time.Duration, errs int64, seconds float64) row {
	slices.Sort(lat)
	r := row{Command: name, Count: len(lat), Errors: errs}
	if seconds > 0 {
		r.Rate = float64(len(lat)) / seconds
	}
	if len(lat) > 0 {
		r.P50, r.P99, r.Max = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(lat[len(lat)-1])
	}
	return r
}

// cmdOrder is the order of the table's rows; others follow by name.
var cmdOrder = []string{"LOGIN", "SELECT", "FETCH_HDR", "FETCH_BODY", "STORE", "SEARCH_FROM", "SEARCH_SUBJECT",
	"SEARCH_UNSEEN", "SEARCH_SINCE", "APPEND", "NOOP", "STAT", "LIST", "UIDL", "TOP", "RETR", "QUIT"}

func sortedNames(m map[string]*opStats) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	rank := func(n string) int {
		if i := slices.Index(cmdOrder, n); i >= 0 {
			return i
		}
		return len(cmdOrder)
	}
	slices.SortFunc(names, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return names
}

// fill turns the merged recorders into rows; el is the measured window.
func (rep *report) fill(all, setup *recorder, el time.Duration) {
	rep.Seconds = el.Seconds()
	var every []time.Duration
	var errs int64
	for _, n := range sortedNames(all.m) {
		st := all.m[n]
		every = append(every, st.lat...)
		errs += st.errs
		rep.Commands = append(rep.Commands, makeRow(n, st.lat, st.errs, rep.Seconds))
		if len(st.samples) > 0 {
			if rep.Errors == nil {
				rep.Errors = map[string][]string{}
			}
			rep.Errors[n] = st.samples
		}
	}
	rep.Total = makeRow("TOTAL", every, errs, rep.Seconds)
	for _, n := range sortedNames(setup.m) {
		st := setup.m[n]
		rep.Setup = append(rep.Setup, makeRow(n, st.lat, st.errs, 0))
		if len(st.samples) > 0 {
			if rep.Errors == nil {
				rep.Errors = map[string][]string{}
			}
			rep.Errors["setup "+n] = st.samples
		}
	}
}

// writeTable prints the results; lines other than the table start with #.
func (rep *report) writeTable(w io.Writer) {
	label := rep.Label
	if label != "" {
		label += " "
	}
	fmt.Fprintf(w, "# imapload %smode=%s sessions=%d targets=%s\n", label, rep.Mode, rep.Sessions, strings.Join(rep.Targets, ","))
	if p := rep.Prefill; p != nil {
		fmt.Fprintf(w, "# prefill: target=%d users=%d before=%d..%d appended=%d bytes=%d errors=%d sessions=%d seconds=%.2f msgs_per_s=%.1f\n",
			p.Target, p.Users, p.MinBefore, p.MaxBefore, p.Appended, p.Bytes, p.Errors, p.Sessions, p.Seconds, p.Rate)
	}
	if rep.Seconds == 0 {
		return
	}
	fmt.Fprintf(w, "# measured %.2f s; latency in ms, of successful operations\n", rep.Seconds)
	fmt.Fprintf(w, "%-15s %9s %7s %10s %9s %9s %9s\n", "command", "count", "errors", "ops/s", "p50_ms", "p99_ms", "max_ms")
	line := func(r row) {
		fmt.Fprintf(w, "%-15s %9d %7d %10.1f %9.3f %9.3f %9.3f\n", r.Command, r.Count, r.Errors, r.Rate, r.P50, r.P99, r.Max)
	}
	for _, r := range rep.Commands {
		line(r)
	}
	line(rep.Total)
	for _, r := range rep.Setup {
		fmt.Fprintf(w, "# setup %s: %d ok, %d errors, p50 %.3f ms, max %.3f ms\n", r.Command, r.Count, r.Errors, r.P50, r.Max)
	}
	names := make([]string, 0, len(rep.Errors))
	for n := range rep.Errors {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		for _, s := range rep.Errors[n] {
			fmt.Fprintf(w, "# error %s: %s\n", n, s)
		}
	}
}
