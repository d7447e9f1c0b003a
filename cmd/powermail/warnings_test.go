package main

import (
	"encoding/json"
	"fmt"
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

// TestImportWarnsOfForwardsTakingMail: mailbox import of an address a
// forward without --keep-copy stands on made a mailbox that gets none of
// its mail, without a word, where mailbox add warns. Import warns the
// same way on stderr, so that --json's stdout stays one JSON value; a
// catch-all takes nothing from a mailbox.
func TestImportWarnsOfForwardsTakingMail(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "domain", "add", "example.org", "--addr", p.admin)
	for _, args := range [][]string{
		{"mailbox", "add", "bob@example.com", "--no-password"},
		{"forward", "add", "info@example.com", "--to", "bob@example.com"},
		{"forward", "add", "Sales@example.org", "--to", "bob@example.com"},
		{"forward", "add", "@example.com", "--to", "bob@example.com"},
	} {
		mustCLI(t, append(args, "--addr", p.admin)...)
	}
	csv := "info@example.com,\ncarl@example.com,\nsales@EXAMPLE.org,\n"
	out, errOut, err := cli(t, csv, "mailbox", "import", "-", "--allow-no-password", "--batch", "2", "--json", "--addr", p.admin)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil || res["created"] != float64(3) {
		t.Fatalf("import --json: %v %v\n%s", err, res, out)
	}
	for _, want := range []string{
		"warning: mailbox info@example.com gets none of its mail while the forward info@example.com -> bob@example.com stands",
		"warning: mailbox sales@EXAMPLE.org gets none of its mail while the forward Sales@example.org -> bob@example.com stands",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("import's stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, not := range []string{"carl@"} {
		if strings.Contains(errOut, not) {
			t.Errorf("import warned of %s:\n%s", not, errOut)
		}
	}

	// A large import names the first 20 and counts the rest.
	csv = ""
	for i := range 23 {
		a := fmt.Sprintf("list%d@example.org", i)
		mustCLI(t, "forward", "add", a, "--to", "bob@example.com", "--addr", p.admin)
		csv += a + ",\n"
	}
	_, errOut, err = cli(t, csv, "mailbox", "import", "-", "--allow-no-password", "--addr", p.admin)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	if n := strings.Count(errOut, "warning: mailbox list"); n != 20 || !strings.Contains(errOut, "warning: and 3 more imported mailboxes get none of their mail") {
		t.Errorf("23 taken mailboxes: %d named, want 20 and a count of 3 more:\n%s", n, errOut)
	}
}

// A row that spells its address in another Unicode form than the
// forward's is the same mailbox: names are stored in NFC, so the
// mailbox it makes is the forward's address, and import warns of it
// as mailbox add does.
func TestImportWarnsOfForwardsTakingMailInAnotherForm(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "mailbox", "add", "bob@example.com", "--no-password", "--addr", p.admin)
	mustCLI(t, "forward", "add", "\u00e9mile@example.com", "--to", "bob@example.com", "--addr", p.admin)
	_, errOut, err := cli(t, "e\u0301mile@example.com,\n", "mailbox", "import", "-", "--allow-no-password", "--addr", p.admin)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "gets none of its mail while the forward \u00e9mile@example.com -> bob@example.com stands") {
		t.Errorf("import of e\u0301mile@ where the forward \u00e9mile@ stands: stderr %q", errOut)
	}
	out := mustCLI(t, "mailbox", "ls", "example.com", "--addr", p.admin)
	if !strings.Contains(out, "\u00e9mile@example.com") {
		t.Errorf("mailbox ls after the import:\n%s", out)
	}
}
