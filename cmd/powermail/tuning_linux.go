//go:build linux

package main

import (
	endian "encoding/binary"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

// Linux prctl(2) options for the calling thread's timer slack.
const (
	prSetTimerSlack = 29
	prGetTimerSlack = 30
)

// reexecTuned replaces the process with itself under the tuning of
// tuning.go. It returns nil without doing anything when nothing needs to
// change, and an error only when a step failed; the caller then runs
// untuned. slack 0 leaves the timer slack as inherited.
func reexecTuned(hugePages bool, slack time.Duration) error {
	thp := ""
	if hugePages && haveCgo && !secureMode() { // without cgo Pebble allocates from the Go heap
		if mode, err := os.ReadFile(thpModePath); err == nil {
			thp = string(mode)
		}
	}
	change := slack > 0 && timerSlack() != slack
	env := reexecEnv(os.Environ(), thp, change)
	if env == nil {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	// The slack is a property of the thread; execve keeps the calling
	// thread's, so both must happen on the same one.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if change {
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerSlack, uintptr(slack.Nanoseconds()), 0); errno != 0 {
			return fmt.Errorf("set timer slack %v: %w", slack, errno)
		}
	}
	if err := syscall.Exec(self, os.Args, env); err != nil {
		return fmt.Errorf("re-execute %s: %w", self, err)
	}
	return nil // not reached
}

// timerSlack returns the calling thread's timer slack.
func timerSlack() time.Duration {
	ns, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prGetTimerSlack, 0, 0)
	if errno != 0 {
		return 0
	}
	return time.Duration(ns)
}

// secureMode reports whether the kernel marked this process AT_SECURE
// (setuid, setgid or file capabilities), in which glibc ignores most
// tunables.
func secureMode() bool {
	auxv, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return true // cannot tell: do not risk a pointless exec
	}
	const atSecure = 23
	for i := 0; i+16 <= len(auxv); i += 16 {
		tag, val := endian.NativeEndian.Uint64(auxv[i:]), endian.NativeEndian.Uint64(auxv[i+8:])
		if tag == atSecure {
			return val != 0
		}
	}
	return false
}
