//go:build linux && cgo

package main

import (
	"fmt"
	"os"
	"syscall"
)

// reexecWithHugePages replaces the process with itself under the glibc
// tunable (hugepages.go). It returns nil without doing anything when that
// is not needed or not possible, and an error only if exec itself failed.
func reexecWithHugePages() error {
	mode, err := os.ReadFile(thpModePath)
	if err != nil {
		return nil // no THP in this kernel: nothing to gain
	}
	env := hugePagesEnv(os.Environ(), string(mode))
	if env == nil {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return nil
	}
	if err := syscall.Exec(self, os.Args, env); err != nil {
		return fmt.Errorf("re-execute with %s=1: %w", hugeTunable, err)
	}
	return nil // not reached
}
