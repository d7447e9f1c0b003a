package frontend_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"powermail/frontend"
)

// TestIMAPFailedCreateLeavesNoSuperiors: a CREATE or RENAME of a nested
// name that fails after it made superior names (the store refuses the
// last step, or one of the superiors, with an error no check foresaw)
// takes back the superiors it made: it fails and changes nothing. One
// that existed before stays.
func TestIMAPFailedCreateLeavesNoSuperiors(t *testing.T) {
	store, user := imapMemStore(t)
	var creates atomic.Int32
	failAt, failOp := int32(-1), ""
	store.Fail = func(op string) error {
		if op == "CreateFolder" && creates.Add(1) == failAt || op == failOp {
			return fmt.Errorf("injected: %w", errors.New("disk on fire"))
		}
		return nil
	}
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, user)
	r.ok("CREATE Source")
	r.ok("CREATE Kept")
	for _, c := range []struct {
		cmd    string
		failAt int32  // the CreateFolder call that fails
		failOp string // or the operation that fails
	}{
		{"CREATE A/B/C", 3, ""},
		{"CREATE A/B/C", 2, ""},
		{"CREATE Kept/B/C", 2, ""},
		{"RENAME Source A/B/C", 0, "RenameFolder"},
		{"RENAME Source A/B/C", 2, ""},
	} {
		creates.Store(0)
		failAt, failOp = c.failAt, c.failOp
		if _, st := r.cmd(c.cmd); strings.HasPrefix(st, "OK") {
			t.Fatalf("%s failing at %d%s: OK", c.cmd, c.failAt, c.failOp)
		}
		failAt, failOp = -1, ""
		u := r.ok(`LIST "" *`)
		for _, l := range u {
			if strings.Contains(l, `"A`) || strings.Contains(l, `"Kept/`) {
				t.Errorf("%s failing at %d%s: left %s", c.cmd, c.failAt, c.failOp, l)
			}
		}
		if !strings.Contains(strings.Join(u, "\n"), `"Kept"`) {
			t.Errorf("%s: Kept is gone: %q", c.cmd, u)
		}
	}
	// The same commands, unhindered, make the superiors.
	r.ok("CREATE A/B/C")
	r.ok("RENAME Source X/Y/Z")
	r.want(`LIST "" X/Y`, "* LIST", "X/Y")
}
