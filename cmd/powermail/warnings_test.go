package main

import (
	"strings"
	"testing"
)

// TestWarningsOfChangesThatTakeEffectQuietly: a change the cluster
// accepts but that stops something an operator expects (a mailbox that
// gets no more mail, bodies that can never have R copies) succeeds, with
// a warning on stderr that says what it does; a change without such an
// effect prints none.
func TestWarningsOfChangesThatTakeEffectQuietly(t *testing.T) {
	p := startSolo(t)
	waitReplicas(t, p.admin, 1)
	mustCLI(t, "mailbox", "add", "ann@example.com", "--no-password", "--addr", p.admin)
	mustCLI(t, "mailbox", "add", "bob@example.com", "--no-password", "--addr", p.admin)

	warns := func(want string, args ...string) {
		t.Helper()
		_, errOut, err := cli(t, "", append(args, "--addr", p.admin)...)
		if err != nil {
			t.Fatalf("%v: %v %q", args, err, errOut)
		}
		switch {
		case want == "" && errOut != "":
			t.Errorf("%v: stderr %q, want nothing", args, errOut)
		case want != "" && !strings.Contains(errOut, "warning: "+want):
			t.Errorf("%v: stderr %q, want a warning with %q", args, errOut, want)
		}
	}
	// R above the members: every body stays short of R, and cluster
	// status exits 1 for it, though deliveries (W=1) go on.
	warns("replicas 2 is more than the 1 members", "settings", "set", "--replicas", "2", "--write-quorum", "1")
	warns("", "settings", "set", "--replicas", "1")

	// A forward on a mailbox's own address takes its mail.
	warns("mailbox ann@example.com gets none of its mail", "forward", "add", "ann@example.com", "--to", "bob@example.com")
	warns("", "forward", "add", "ann@example.com", "--to", "bob@example.com", "--keep-copy", "--replace")
	warns("", "forward", "add", "info@example.com", "--to", "bob@example.com")
	// And a mailbox made where such a forward stands gets none either.
	warns("mailbox info@example.com gets none of its mail", "mailbox", "add", "info@example.com", "--no-password")
	mustCLI(t, "forward", "add", "sales@example.com", "--to", "bob@example.com", "--addr", p.admin)
	mustCLI(t, "forward", "rm", "sales@example.com", "--addr", p.admin)
	warns("", "mailbox", "add", "sales@example.com", "--no-password")
}
