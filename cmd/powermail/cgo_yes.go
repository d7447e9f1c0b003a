//go:build cgo

package main

// haveCgo says that Pebble allocates its memtables with C calloc, which
// glibc's huge-pages tunable governs (hugepages.go).
const haveCgo = true
