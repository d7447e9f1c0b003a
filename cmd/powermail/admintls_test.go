package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"powermail/node/testcerts"
)

// With --admin-tls-cert the admin API speaks HTTPS only: the CLI reaches
// it with --ca (here POWERMAIL_CA), a node joins through it with
// --admin-tls-ca, a write sent to the follower is forwarded, and plain
// HTTP or an untrusted server is refused with a reason.
func TestAdminAPIOverTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testcerts.NewCA(t, "admin CA")
	cert, key, caFile := ca.Issue(t, dir, "admin")
	t.Setenv("POWERMAIL_CA", caFile)
	n1 := &proc{id: "n1", cluster: freeAddr(t), admin: freeAddr(t), data: filepath.Join(dir, "1")}
	n2 := &proc{id: "n2", cluster: freeAddr(t), admin: freeAddr(t), data: filepath.Join(dir, "2")}
	https := func(p *proc) string { return "https://" + p.admin }
	n1.start(t, "--admin-tls-cert", cert, "--admin-tls-key", key, "--bootstrap")
	if _, ok := pollStatus(t, https(n1), 30*time.Second, func(s statusJSON) bool { return s.Leader == "n1" }); !ok {
		t.Fatalf("n1 never led; its log:\n%s", n1.log.String())
	}
	n2.start(t, "--admin-tls-cert", cert, "--admin-tls-key", key, "--join", https(n1), "--admin-tls-ca", caFile)
	st, ok := pollStatus(t, https(n2), 30*time.Second, func(s statusJSON) bool { return len(s.Nodes) == 2 })
	if !ok {
		t.Fatalf("n2 never joined; its log:\n%s", n2.log.String())
	}
	for _, m := range st.Nodes { // the address others are told says https
		if want := map[string]string{"n1": https(n1), "n2": https(n2)}[m.ID]; m.AdminAddr != want {
			t.Errorf("%s's admin address %q, want %q", m.ID, m.AdminAddr, want)
		}
	}
	mustCLI(t, "domain", "add", "example.com", "--addr", https(n2))
	if out := mustCLI(t, "domain", "ls", "--addr", https(n1)); !strings.Contains(out, "example.com") {
		t.Fatalf("domain ls: %s", out)
	}

	_, errOut, err := cli(t, "", "domain", "ls", "--addr", n1.admin)
	if err == nil || !strings.Contains(errOut, "HTTPS") {
		t.Errorf("plain HTTP to the TLS port: %v %q", err, errOut)
	}
	_, _, otherCA := testcerts.NewCA(t, "other CA").Issue(t, t.TempDir(), "other")
	t.Logf("plain HTTP: %s", errOut)
	_, errOut, err = cli(t, "", "domain", "ls", "--addr", https(n1), "--ca", otherCA)
	if err == nil || !strings.Contains(errOut, "certificate") {
		t.Errorf("a server the client does not trust: %v %q", err, errOut)
	}
	t.Logf("untrusted: %s", errOut)
}
