package main

import (
	"strings"
	"testing"
)

// TestCLIBadInputWithoutACluster: mistakes an operator makes before any
// request each end in one line that names the mistake and a non-zero
// exit.
func TestCLIBadInputWithoutACluster(t *testing.T) {
	down := freeAddr(t) // nothing listens: requests that get that far fail
	for _, f := range []struct {
		args []string
		want string
	}{
		{[]string{"domain", "add"}, "usage: powermail domain add DOMAIN..."},
		{[]string{"domain", "ls", "extra"}, `domain ls takes no arguments, got "extra"`},
		{[]string{"storage", "verify", "now"}, "storage verify takes no arguments"},
		{[]string{"mailbox", "add", "a@example.com", "--password", "x", "--no-password"}, "[no-password password] were all set"},
		{[]string{"domain", "ls", "--timeout", "0"}, "--timeout 0s: give a duration above 0"},
	} {
		args := f.args
		if !strings.Contains(strings.Join(args, " "), "--addr") {
			args = append(args, "--addr", down)
		}
		_, errOut, err := cli(t, "", args...)
		line := strings.TrimSpace(errOut)
		if err == nil || !strings.Contains(line, f.want) || strings.Contains(line, "\n") || strings.Contains(line, "<html") {
			t.Errorf("%v: err=%v stderr=%q, want one line with %q", f.args, err, errOut, f.want)
		}
	}
}
