//go:build !cgo

package main

// haveCgo says that Pebble allocates its memtables from the Go heap here.
const haveCgo = false
