//go:build !linux

package main

import "io"

// readHidden reads nothing where the terminal cannot be told to stop
// echoing from here: the caller reads the line as it is.
func readHidden(any, io.Writer, string) (string, bool, error) { return "", false, nil }

// isTerminal cannot tell here; an archive may go to a terminal.
func isTerminal(io.Writer) bool { return false }
