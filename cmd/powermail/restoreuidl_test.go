package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// mailbox restore keeps the POP3 unique-ids of a Dovecot INBOX by the
// --pop3-uidl-format the operator's Dovecot used, says how many it kept,
// and refuses a format it cannot follow before it reads the archive.
func TestMailboxRestoreKeepsPOP3UIDLs(t *testing.T) {
	p := startSoloMail(t, "uidl@example.com")
	dove := filepath.Join(t.TempDir(), "dove.tar")
	writeTar(t, dove, map[string]string{
		"Maildir/cur/1700000000.M1.host:2,S": "Subject: one\r\n\r\n1\r\n",
		"Maildir/cur/1700000001.M2.host:2,S": "Subject: two\r\n\r\n2\r\n",
		"Maildir/dovecot-uidlist":            "3 V1234567890 N9\n5 :1700000000.M1.host:2,S\n8 Pkept-as-is :1700000001.M2.host\n",
	})
	_, errOut, err := cli(t, "", "mailbox", "restore", "uidl@example.com", dove, "--pop3-uidl-format", "%08Xu%m", "--addr", p.admin)
	if err == nil || !strings.Contains(errOut, "invalid input") || !strings.Contains(errOut, `"%m"`) {
		t.Fatalf("restore with %%m: %v %q, want it refused naming %%m", err, errOut)
	}
	out := mustCLI(t, "mailbox", "restore", "uidl@example.com", dove, "--pop3-uidl-format", "%v-%u", "--addr", p.admin)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "POP3-UIDLS-KEPT") || !strings.HasSuffix(lines[1], " 2") {
		t.Fatalf("restore said %q, want 2 unique-ids kept", out)
	}
	pop := dialLines(t, p.pop3)
	pop.expect("+OK")
	for _, c := range []string{"USER uidl@example.com", "PASS pw"} {
		pop.send(c)
		pop.expect("+OK")
	}
	pop.send("UIDL")
	pop.expect("+OK")
	pop.expect("1 1234567890-5\r\n")
	pop.expect("2 kept-as-is\r\n")
	pop.expect(".")
}
