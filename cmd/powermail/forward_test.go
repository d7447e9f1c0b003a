package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// startSolo starts a one-node cluster (R=1) that hosts example.com.
func startSolo(t *testing.T) *proc {
	t.Helper()
	p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	p.start(t, "--bootstrap", "--replicas", "1")
	p.waitLeader(t, 30*time.Second)
	waitLog(t, p, `msg="node running"`) // the bootstrap settings are in place
	mustCLI(t, "domain", "add", "example.com", "--addr", p.admin)
	return p
}

// One target given twice, or spelt once more with the domain in capitals,
// is stored once, and the confirmation names it once.
func TestForwardAddStoresEachTargetOnce(t *testing.T) {
	p := startSolo(t)
	out := mustCLI(t, "forward", "add", "sales@example.com", "--to", "a@x.org", "--to", "a@x.org", "--to", "a@X.ORG", "--addr", p.admin)
	if got := strings.TrimSpace(out); got != "forward sales@example.com -> a@x.org" {
		t.Errorf("forward add said %q", got)
	}
	out = mustCLI(t, "forward", "ls", "--addr", p.admin)
	if !strings.Contains(out, "a@x.org") || strings.Count(strings.ToLower(out), "a@x.org") != 1 {
		t.Errorf("forward ls:\n%s", out)
	}
}

// forward ls --json says keep_copy also when it is false.
func TestForwardListJSONSaysKeepCopy(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "forward", "add", "sales@example.com", "--to", "a@x.org", "--addr", p.admin)
	var fws []map[string]any
	out := mustCLI(t, "forward", "ls", "--json", "--addr", p.admin)
	if err := json.Unmarshal([]byte(out), &fws); err != nil || len(fws) != 1 {
		t.Fatalf("forward ls --json: %v\n%s", err, out)
	}
	if keep, ok := fws[0]["keep_copy"].(bool); !ok || keep {
		t.Fatalf("keep_copy is %v, want false:\n%s", fws[0]["keep_copy"], out)
	}
}

// forward add refuses an address that has a forward; with --replace it
// changes the targets in one step.
func TestForwardReplace(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "forward", "add", "sales@example.com", "--to", "a@x.org", "--addr", p.admin)
	if _, stderr, err := cli(t, "", "forward", "add", "sales@example.com", "--to", "b@x.org", "--addr", p.admin); err == nil || !strings.Contains(stderr, "already exists") {
		t.Fatalf("a second add: %v, %q; want it refused as existing", err, stderr)
	}
	out := mustCLI(t, "forward", "add", "sales@example.com", "--to", "b@x.org", "--to", "c@x.org", "--replace", "--addr", p.admin)
	if got := strings.TrimSpace(out); got != "forward sales@example.com -> b@x.org, c@x.org" {
		t.Errorf("forward add --replace said %q", got)
	}
	out = mustCLI(t, "forward", "ls", "--addr", p.admin)
	if strings.Contains(out, "a@x.org") || !strings.Contains(out, "b@x.org") || !strings.Contains(out, "c@x.org") {
		t.Errorf("forward ls after the replace:\n%s", out)
	}
}

// forward ls --target lists the forwards of every domain that name an
// address, whatever its case.
func TestForwardListByTarget(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "domain", "add", "other.org", "--addr", p.admin)
	mustCLI(t, "mailbox", "add", "bob@example.com", "--password", "pw", "--addr", p.admin)
	mustCLI(t, "forward", "add", "team@example.com", "--to", "Bob@example.com", "--to", "x@y.net", "--addr", p.admin)
	mustCLI(t, "forward", "add", "@other.org", "--to", "bob@example.com", "--addr", p.admin)
	mustCLI(t, "forward", "add", "solo@example.com", "--to", "x@y.net", "--addr", p.admin)
	out := mustCLI(t, "forward", "ls", "--target", "BOB@example.com", "--addr", p.admin)
	if !strings.Contains(out, "team@example.com") || !strings.Contains(out, "@other.org") || strings.Contains(out, "solo@") {
		t.Errorf("forward ls --target:\n%s", out)
	}
	if _, stderr, err := cli(t, "", "forward", "ls", "example.com", "--target", "bob@example.com", "--addr", p.admin); err == nil || !strings.Contains(stderr, "not both") {
		t.Errorf("a domain and --target: %v %q", err, stderr)
	}
	// Removing the mailbox names the forwards that still list it.
	out, stderr, err := cli(t, "", "mailbox", "rm", "bob@example.com", "--addr", p.admin)
	if err != nil || !strings.Contains(out, "removed mailbox") || !strings.Contains(stderr, "warning: forwards still name bob@example.com") ||
		!strings.Contains(stderr, "team@example.com") || !strings.Contains(stderr, "@other.org") {
		t.Errorf("mailbox rm: %v, out %q, stderr %q", err, out, stderr)
	}
	mustCLI(t, "mailbox", "add", "lone@example.com", "--password", "pw", "--addr", p.admin)
	if _, stderr, err := cli(t, "", "mailbox", "rm", "lone@example.com", "--addr", p.admin); err != nil || stderr != "" {
		t.Errorf("mailbox rm of a mailbox no forward names: %v, stderr %q", err, stderr)
	}
}

// domain add of several domains that fails part way names those it
// added, so that the operator does not run it again as it was.
func TestDomainAddPartialSaysWhatWasAdded(t *testing.T) {
	p := startSolo(t)
	_, errOut, err := cli(t, "", "domain", "add", "a.example", "b.example", "bad_one", "c.example", "--addr", p.admin)
	if err == nil || !strings.Contains(errOut, "bad_one") || !strings.Contains(errOut, "added before it: a.example, b.example") {
		t.Fatalf("domain add: %v\n%s", err, errOut)
	}
	out := mustCLI(t, "domain", "ls", "--addr", p.admin)
	if !strings.Contains(out, "b.example") || strings.Contains(out, "c.example") {
		t.Errorf("domain ls:\n%s", out)
	}
}
