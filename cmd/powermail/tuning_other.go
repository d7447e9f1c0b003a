//go:build !linux

package main

import "time"

// reexecTuned does nothing here: the glibc tunable and the timer slack of
// tuning.go are Linux's.
func reexecTuned(bool, time.Duration) error { return nil }

// timerSlack is not known here.
func timerSlack() time.Duration { return 0 }
