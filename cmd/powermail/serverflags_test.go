package main

import (
	"strings"
	"testing"
)

// server without --id or --data said first that a cluster secret was
// required, so a newcomer set one and only then learnt of the flags. The
// required flags are named before the secret (after any flag given a
// bad value), with nothing started.
func TestServerNamesMissingRequiredFlagsFirst(t *testing.T) {
	t.Setenv("POWERMAIL_SECRET", "")
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"server"}, "--id and --data are required"},
		{[]string{"server", "--data", t.TempDir()}, "--id is required"},
		{[]string{"server", "--id", "n1"}, "--data is required"},
	} {
		_, stderr, err := cli(t, "", tc.args...)
		if err == nil || !strings.Contains(stderr, tc.says) || strings.Contains(stderr, "secret") {
			t.Errorf("%v: err %v, stderr %q, want it to say %q and nothing of the secret", tc.args, err, stderr, tc.says)
		}
	}
	// Given through the environment, they are there: the secret is next.
	t.Setenv("POWERMAIL_ID", "n1")
	t.Setenv("POWERMAIL_DATA", t.TempDir())
	if _, stderr, err := cli(t, "", "server"); err == nil || !strings.Contains(stderr, "cluster secret") {
		t.Errorf("--id and --data from the environment: err %v, stderr %q, want the secret asked for", err, stderr)
	}
}
