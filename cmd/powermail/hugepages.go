package main

import "strings"

// Transparent huge pages for Pebble's memtables.
//
// Pebble allocates each memtable arena (up to 32 MiB for the body store)
// with C calloc, and every commit inserts into it and every point read
// walks its skiplist, touching pages spread over the whole arena. With
// 4 KiB pages that costs TLB misses, which a virtual machine pays with a
// two-level page walk, and a first touch of each page costs a fault in
// the guest and in the host (about 13 µs per 4 KiB page here). glibc
// backs large allocations with transparent huge pages when the tunable
// glibc.malloc.hugetlb=1 is set, but it reads tunables only at process
// start. So a server started without it re-executes itself once with the
// tunable added. Under delivery load this cut CPU per message by about a
// tenth (BENCHMARKS.md, "Huge pages").
//
// Nothing is done when the operator set glibc.malloc.hugetlb (to any
// value), when the kernel's THP mode is "never", when the binary has no
// cgo (Pebble then allocates from the Go heap), or when the process runs
// in glibc's secure mode (setuid or file capabilities, such as
// cap_net_bind_service for port 25), where glibc drops the tunable; see
// tuning_linux.go. The re-execution itself is shared with the timer
// slack (tuning.go).

const (
	tunablesEnv = "GLIBC_TUNABLES"
	hugeTunable = "glibc.malloc.hugetlb"
	thpModePath = "/sys/kernel/mm/transparent_hugepage/enabled"
)

// hugePagesEnv returns environ with the tunable added, or nil when it is
// not wanted. thpMode is the content of thpModePath, or "" when huge
// pages cannot be had (no THP, no cgo, glibc in secure mode).
func hugePagesEnv(environ []string, thpMode string) []string {
	if thpMode == "" || strings.Contains(thpMode, "[never]") {
		return nil
	}
	out := make([]string, 0, len(environ)+1)
	found := false
	for _, kv := range environ {
		v, ok := strings.CutPrefix(kv, tunablesEnv+"=")
		if !ok {
			out = append(out, kv)
			continue
		}
		if found {
			out = append(out, kv)
			continue
		}
		found = true
		if strings.Contains(v, hugeTunable+"=") {
			return nil // the operator chose
		}
		if v != "" {
			v += ":"
		}
		out = append(out, tunablesEnv+"="+v+hugeTunable+"=1")
	}
	if !found {
		out = append(out, tunablesEnv+"="+hugeTunable+"=1")
	}
	return out
}
