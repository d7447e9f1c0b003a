package main

import (
	"slices"
	"strings"
	"time"
)

// Process tuning that has to be in place before the Go runtime and Pebble
// start: huge pages for the memtables (hugepages.go) and the timer slack
// below. Both are inherited across execve, and neither can be set for
// threads that already run, so `powermail server` re-executes itself once
// when either is wanted and not yet in place. The re-executed process
// carries reexecMarker and never re-executes again, whatever the kernel
// or glibc made of the request.
//
// Timer slack. The Go runtime's monitor thread (sysmon) sleeps 20 µs at a
// time whenever it recently took a P back from a thread blocked in a
// system call, and a mail node is always in one: fdatasync for the body
// store and the raft log, socket reads and writes. Each of those sleeps
// is a timer interrupt and two context switches, and on a virtual machine
// every one of them traps to the hypervisor: at the default slack of
// 50 µs the monitors of three nodes under delivery load took about 7% of
// this 2-core machine. A slack of 1 ms lets the kernel stretch and merge
// those wake-ups; it also lets any of the server's timers fire up to that
// much late, which nothing here depends on (protocol timeouts are seconds,
// raft's are tens of milliseconds, and IMAP's write coalescing timer is a
// fallback behind the flush before every read). BENCHMARKS.md, "Timer
// slack", has the measurements.

const reexecMarker = "POWERMAIL_REEXEC"

// maxTimerSlack bounds --timer-slack: the raft leader's commit timeout is
// 5 ms, and a slack near it would stretch how soon followers learn of a
// commit when traffic stops.
const maxTimerSlack = 10 * time.Millisecond

// reexecEnv returns the environment to re-execute with, or nil when no
// re-execution is needed. thpMode is as for hugePagesEnv; slack says that
// the timer slack has to change.
func reexecEnv(environ []string, thpMode string, slack bool) []string {
	if slices.ContainsFunc(environ, func(kv string) bool { return strings.HasPrefix(kv, reexecMarker+"=") }) {
		return nil // this is the re-executed process
	}
	env := hugePagesEnv(environ, thpMode)
	if env == nil && !slack {
		return nil
	}
	if env == nil {
		env = slices.Clone(environ)
	}
	return append(env, reexecMarker+"=1")
}
