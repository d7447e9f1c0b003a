//go:build linux && cgo

package main

import (
	endian "encoding/binary"
	"fmt"
	"os"
	"syscall"
)

// reexecWithHugePages replaces the process with itself under the glibc
// tunable (hugepages.go). It returns nil without doing anything when that
// is not needed or not possible. An error means exec itself failed; the
// caller goes on without huge pages.
func reexecWithHugePages() error {
	mode, err := os.ReadFile(thpModePath)
	if err != nil || secureMode() {
		return nil // no THP in this kernel, or glibc would drop the tunable
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
		return fmt.Errorf("re-execute %s with %s=1: %w", self, hugeTunable, err)
	}
	return nil // not reached
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
