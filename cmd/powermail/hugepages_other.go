//go:build !linux || !cgo

package main

// reexecWithHugePages does nothing here: without cgo Pebble allocates from
// the Go heap, and the glibc tunable exists only on Linux.
func reexecWithHugePages() error { return nil }
