package main

import (
	"strings"
	"testing"
	"time"
)

// TestWarningsOfChangesThatTakeEffectQuietly: a change the cluster
// accepts but that stops something an operator expects (a mailbox that
// gets no more mail, bodies that can never have R copies) succeeds, with
// a warning on stderr that says what it does; a change without such an
// effect prints none.
func TestWarningsOfChangesThatTakeEffectQuietly(t *testing.T) {
	p := &proc{id: "warn", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	p.start(t, "--bootstrap", "--replicas", "1")
	waitStatus(t, p.admin, 10*time.Second, func(s statusJSON) bool { return s.Leader == "warn" })
	waitReplicas(t, p.admin, 1)

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
}
