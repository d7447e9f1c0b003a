package main

import (
	"fmt"
	"net/smtp"
	"strings"
	"testing"
)

// cluster status's per-node count and storage verify's count are of
// different things, and each says which: the node's column counts the
// copies in its own store (a removed mailbox's bodies among them until
// garbage collection), the redundancy line and verify each referenced
// body once. They differed, each called "bodies", without a word why.
func TestStatusCopiesAndVerifyBodiesSayWhatTheyCount(t *testing.T) {
	p := startSoloMail(t, "gone@example.com")
	mustCLI(t, "mailbox", "add", "kept@example.com", "--no-password", "--addr", p.admin)
	for i, to := range []string{"gone@example.com", "gone@example.com", "kept@example.com"} {
		body := fmt.Sprintf("Subject: m%d\r\n\r\nmessage %d\r\n", i, i)
		if err := smtp.SendMail(p.smtp, nil, "x@example.net", []string{to}, []byte(body)); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	mustCLI(t, "mailbox", "rm", "gone@example.com", "--addr", p.admin)
	mustCLI(t, "storage", "repair", "--addr", p.admin) // the redundancy line's scan

	out := statusCLI(t, "--addr", p.admin)
	var header, solo []string
	for _, l := range strings.Split(out, "\n") {
		switch f := strings.Fields(l); {
		case len(f) > 0 && f[0] == "ID":
			header = f
		case len(f) > 0 && f[0] == "solo":
			solo = f
		}
	}
	if len(header) < 11 || header[9] != "COPIES" || header[10] != "COPY-BYTES" || len(solo) < 10 || solo[9] != "3" {
		t.Errorf("cluster status: header %q, row %q; want COPIES 3 (two of the removed mailbox not yet collected):\n%s", header, solo, out)
	}
	if !strings.Contains(out, "redundancy: 1 referenced body, 0 under-replicated") {
		t.Errorf("cluster status's redundancy line does not count referenced bodies:\n%s", out)
	}
	out = mustCLI(t, "storage", "verify", "--addr", p.admin)
	if want := "1 referenced body checked (every listed copy of each read back), 0 short of R verified replicas\n"; !strings.HasPrefix(out, want) {
		t.Errorf("storage verify said %q, want it to start %q", out, want)
	}
}
