package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCLIMistakesNamedPlainly: mistakes made before any request is sent
// end in one line that names the mistake as the operator made it, never
// as a Go parser or cobra's command finder saw it.
func TestCLIMistakesNamedPlainly(t *testing.T) {
	down := freeAddr(t) // nothing listens: a request that gets that far fails
	for _, f := range []struct {
		args    []string
		want    string
		notWant string
	}{
		// A mistyped flag before the command took the command as its
		// value, and the error blamed the subcommand.
		{[]string{"--jsno", "cluster", "status"}, "unknown flag: --jsno", "unknown command"},
		{[]string{"--bogus", "domain", "ls"}, "unknown flag: --bogus", "unknown command"},
		{[]string{"--timeout", "domain", "ls"}, `--timeout "domain"`, "unknown command"},
		{[]string{"bogus"}, `unknown command "bogus" for "powermail"`, ""},
		{[]string{"domian", "ls"}, "Did you mean this?; domain", ""},
		// Flag values: what is wanted, not strconv's or time's wording.
		{[]string{"settings", "set", "--replicas", "abc"}, `--replicas "abc": want a whole number`, "strconv"},
		{[]string{"domain", "ls", "--json=maybe"}, `--json "maybe": want true or false`, "strconv"},
		{[]string{"domain", "ls", "--timeout", "5"}, `--timeout "5": want a duration with a unit, say 30s or 5m`, "time:"},
		{[]string{"cluster", "check-state", "--wait", "1d"}, `--wait "1d": want a duration with a unit`, "time:"},
		// passwd has no --no-password: the hint named a flag it refuses.
		{[]string{"mailbox", "passwd", "a@example.com"}, "no password given (use --password or stdin)", "--no-password"},
		// The node refuses a batch over 10000 only after the whole file
		// was read; an impossible batch size is said at once.
		{[]string{"mailbox", "import", "-", "--batch", "20000"}, "--batch 20000: give 1 to 10000", ""},
		{[]string{"mailbox", "import", "-", "--batch", "0"}, "--batch 0: give 1 to 10000", ""},
		{[]string{"mailbox", "restore", "a@example.com", "-", "--max-message-size", "0"}, "--max-message-size 0: give a size above 0", "max_bytes"},
	} {
		_, errOut, err := cli(t, "", append(f.args, "--addr", down)...)
		line := strings.TrimSpace(errOut)
		if err == nil || !strings.Contains(line, f.want) || strings.Contains(line, "\n") || (f.notWant != "" && strings.Contains(line, f.notWant)) {
			t.Errorf("%v: err=%v stderr=%q, want one line with %q (and without %q)", f.args, err, errOut, f.want, f.notWant)
		}
	}
	// A client setting from the environment is named as such.
	c := cliEnv(t, []string{"POWERMAIL_TIMEOUT=5"}, "domain", "ls", "--addr", down)
	if !strings.Contains(c, `POWERMAIL_TIMEOUT "5": want a duration with a unit`) {
		t.Errorf("POWERMAIL_TIMEOUT=5: %q", c)
	}
	// No arguments at all still prints the help, and succeeds.
	if out := mustCLI(t); !strings.Contains(out, "Available Commands") {
		t.Errorf("powermail alone printed %q", out)
	}
}

// cliEnv runs a client command with extra environment and returns its
// stderr; the command must fail.
func cliEnv(t *testing.T, env []string, args ...string) string {
	t.Helper()
	c := exec.Command(binary, args...)
	c.Env = append(os.Environ(), env...)
	var errb strings.Builder
	c.Stderr = &errb
	if err := c.Run(); err == nil {
		t.Fatalf("%v with %v succeeded", args, env)
	}
	return errb.String()
}
