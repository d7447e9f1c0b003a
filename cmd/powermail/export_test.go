package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/smtp"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/node"
)

// mailbox export writes the mailbox as a Maildir++ tar: every folder,
// every message byte for byte, flags in the names, keywords in
// dovecot-keywords; an unknown mailbox leaves no file.
func TestMailboxExport(t *testing.T) {
	p := startSoloMail(t, "erin@example.com")
	for _, subj := range []string{"one", "two"} {
		if err := smtp.SendMail(p.smtp, nil, "x@example.net", []string{"erin@example.com"}, []byte("Subject: "+subj+"\r\n\r\nbody "+subj+"\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	archived := "From: erin@example.com\r\nSubject: kept\r\n\r\nfrom 2024\r\n"
	imap := dialLines(t, p.imap)
	imap.expect("* OK")
	for _, c := range []string{"a LOGIN erin@example.com pw", "b SELECT INBOX", `c STORE 1 +FLAGS (\Seen $Label1)`,
		`d CREATE "Archive/2024"`, `e CREATE "Café"`,
		fmt.Sprintf(`f APPEND "Archive/2024" (\Flagged) {%d+}`, len(archived)) + "\r\n" + archived} {
		imap.send(c)
		imap.expect(c[:1] + " OK")
	}

	out := filepath.Join(t.TempDir(), "erin.tar")
	mustCLI(t, "mailbox", "export", "erin@example.com", "--out", out, "--addr", p.admin)
	files, order := readTar(t, out)
	if kw, first := slices.Index(order, "Maildir/dovecot-keywords"), slices.IndexFunc(order, func(n string) bool {
		return strings.HasPrefix(n, "Maildir/cur/") && n != "Maildir/cur/"
	}); kw < 0 || kw > first {
		t.Errorf("dovecot-keywords at %d, the first message at %d: the keywords must come first", kw, first)
	}
	names := slices.Sorted(maps.Keys(files))
	has := func(name string) bool { _, ok := files[name]; return ok }
	for _, dir := range []string{"Maildir/cur/", "Maildir/new/", "Maildir/tmp/", "Maildir/.Archive.2024/cur/", "Maildir/.Caf&AOk-/cur/"} {
		if !has(dir) {
			t.Errorf("no %s in %q", dir, names)
		}
	}
	var inbox, archive []string
	for _, n := range names {
		switch {
		case strings.HasPrefix(n, "Maildir/cur/") && n != "Maildir/cur/":
			inbox = append(inbox, n)
		case strings.HasPrefix(n, "Maildir/.Archive.2024/cur/") && n != "Maildir/.Archive.2024/cur/":
			archive = append(archive, n)
		}
	}
	if len(inbox) != 2 || !strings.HasSuffix(inbox[0], ":2,Sa") || !strings.HasSuffix(inbox[1], ":2,") {
		t.Fatalf("INBOX files %q, want the first with S and keyword a", inbox)
	}
	for i, n := range inbox {
		if want := fmt.Sprintf(",S=%d:", len(files[n])); !strings.Contains(n, want) || !strings.Contains(files[n], "body "+[]string{"one", "two"}[i]) {
			t.Errorf("%s: %d octets %q", n, len(files[n]), files[n])
		}
	}
	if got := files["Maildir/dovecot-keywords"]; got != "0 $Label1\n" {
		t.Errorf("dovecot-keywords %q", got)
	}
	if len(archive) != 1 || !strings.HasSuffix(archive[0], ":2,F") || files[archive[0]] != archived {
		t.Fatalf("Archive/2024: %q, want the appended message byte for byte", archive)
	}

	missing := filepath.Join(t.TempDir(), "nobody.tar")
	if _, stderr, err := cli(t, "", "mailbox", "export", "nobody@example.com", "--out", missing, "--addr", p.admin); err == nil || !strings.Contains(stderr, "not found") {
		t.Errorf("export of an unknown mailbox: %v, %q", err, stderr)
	}
	if left, _ := filepath.Glob(missing + "*"); len(left) != 0 {
		t.Errorf("a failed export left %q", left)
	}
}

// readTar reads an archive into name -> content, and the names in order.
func readTar(t *testing.T, path string) (map[string]string, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string]string{}
	var order []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, order
		}
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = string(b)
		order = append(order, h.Name)
	}
}

// What mailbox export writes, mailbox restore reads back: the same
// messages with the same flags and keywords in the same folders; a second
// restore adds nothing. A Dovecot-style tar (a prefix, new/, tmp/) is
// read too.
func TestMailboxRestore(t *testing.T) {
	p := startSoloMail(t, "gina@example.com")
	mustCLI(t, "mailbox", "add", "hank@example.com", "--password", "pw", "--addr", p.admin)
	if err := smtp.SendMail(p.smtp, nil, "x@example.net", []string{"gina@example.com"}, []byte("Subject: s\r\n\r\nsent\r\n")); err != nil {
		t.Fatal(err)
	}
	imap := dialLines(t, p.imap)
	imap.expect("* OK")
	for _, c := range []string{"a LOGIN gina@example.com pw", "b SELECT INBOX", `c STORE 1 +FLAGS (\Answered Project)`,
		`d CREATE "Ünï/2024"`, "e APPEND \"Ünï/2024\" (\\Seen) {9+}\r\nSubject:\r\n"} {
		imap.send(c)
		imap.expect(c[:1] + " OK")
	}
	dir := t.TempDir()
	gina := filepath.Join(dir, "gina.tar")
	mustCLI(t, "mailbox", "export", "gina@example.com", "--out", gina, "--addr", p.admin)
	if res := restore(t, p, "hank@example.com", gina); res.Added != 2 || !slices.Equal(res.Folders, []string{"Ünï/2024"}) {
		t.Fatalf("restore said %+v", res)
	}
	hank := filepath.Join(dir, "hank.tar")
	mustCLI(t, "mailbox", "export", "hank@example.com", "--out", hank, "--addr", p.admin)
	if a, b := mailSummary(t, gina), mailSummary(t, hank); !slices.Equal(a, b) {
		t.Fatalf("restored mailbox differs:\n%q\n%q", a, b)
	}
	if res := restore(t, p, "hank@example.com", gina); res.Added != 0 || res.Duplicates != 2 {
		t.Errorf("a second restore said %+v", res)
	}

	// A Dovecot Maildir in a tar of its own: a path prefix, new/ (unseen),
	// tmp/ (skipped), a keyword file after the message that uses it (the
	// keyword is stored all the same).
	dove := filepath.Join(dir, "dove.tar")
	writeTar(t, dove, map[string]string{
		"home/ivy/Maildir/new/1700000000.M1.host":             "Subject: new\r\n\r\nn\r\n",
		"home/ivy/Maildir/tmp/1700000001.M2.host":             "Subject: tmp\r\n\r\nt\r\n",
		"home/ivy/Maildir/.Sent/cur/1700000002.M3.host:2,RSa": "Subject: sent\r\n\r\ns\r\n",
		"home/ivy/Maildir/.Sent/dovecot-keywords":             "0 Late\n",
		"home/ivy/Maildir/dovecot-uidlist":                    "3 V1 N4\n",
	})
	mustCLI(t, "mailbox", "add", "ivy@example.com", "--password", "pw", "--addr", p.admin)
	if res := restore(t, p, "ivy@example.com", dove); res.Added != 2 {
		t.Fatalf("restore of a Dovecot tar said %+v", res)
	}
	ivy := filepath.Join(dir, "ivy.tar")
	mustCLI(t, "mailbox", "export", "ivy@example.com", "--out", ivy, "--addr", p.admin)
	want := []string{"Maildir :2, Subject: new\r\n\r\nn\r\n", "Maildir/.Sent :2,RSa Subject: sent\r\n\r\ns\r\n"}
	if got := mailSummary(t, ivy); !slices.Equal(got, want) {
		t.Errorf("Dovecot tar restored as %q, want %q", got, want)
	}
	if files, _ := readTar(t, ivy); files["Maildir/.Sent/dovecot-keywords"] != "0 Late\n" {
		t.Errorf("keywords of the restored Sent: %q", files["Maildir/.Sent/dovecot-keywords"])
	}
	if _, stderr, err := cli(t, "", "mailbox", "restore", "nobody@example.com", dove, "--addr", p.admin); err == nil || !strings.Contains(stderr, "not found") {
		t.Errorf("restore into an unknown mailbox: %v %q", err, stderr)
	}
}

// restore runs mailbox restore and returns what it reported.
func restore(t *testing.T, p *proc, addr, file string) node.RestoreResult {
	t.Helper()
	var res node.RestoreResult
	if out := mustCLI(t, "mailbox", "restore", addr, file, "--json", "--addr", p.admin); json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("restore said %q", out)
	}
	return res
}

// mailSummary lists an export's messages as "folder-dir flags content",
// sorted, without the names' UIDs and dates.
func mailSummary(t *testing.T, path string) []string {
	t.Helper()
	files, _ := readTar(t, path)
	var out []string
	for name, content := range files {
		d, file, ok := strings.Cut(name, "/cur/")
		if !ok || file == "" {
			continue
		}
		_, flags, _ := strings.Cut(file, ":2,")
		out = append(out, d+" :2,"+flags+" "+content)
	}
	slices.Sort(out)
	return out
}

// writeTar writes files (name -> content) into a tar at path.
func writeTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(files[name])), ModTime: time.Unix(1_700_000_000, 0)}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, files[name])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A restore of a file that is no tar, or of an archive cut short (a
// copy that broke off), said "invalid input: invalid argument: archive:
// unexpected EOF": the error's kind twice, and nothing an operator can
// act on. It says once that the input is invalid, and that the archive
// ends early; an "already exists" is not said twice either.
func TestCLIErrorsSayTheirKindOnce(t *testing.T) {
	p := startSolo(t)
	mustCLI(t, "mailbox", "add", "ann@example.com", "--password", "pw", "--addr", p.admin)
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	body := strings.Repeat("Subject: x\n\nline\n", 200)
	if err := tw.WriteHeader(&tar.Header{Name: "Maildir/cur/1.host:2,S", Mode: 0o600, Size: int64(len(body))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(body))
	tw.Close()
	for name, in := range map[string][]byte{
		"not a tar": []byte("garbage\n"),
		"cut short": tarball.Bytes()[:1024],
	} {
		_, errOut, err := cli(t, string(in), "mailbox", "restore", "ann@example.com", "-", "--addr", p.admin)
		if err == nil || strings.Count(errOut, "invalid") != 1 || !strings.Contains(errOut, "ends early") {
			t.Errorf("restore of %s: %v %q, want one \"invalid\" and that the archive ends early", name, err, errOut)
		}
	}
	_, errOut, err := cli(t, "", "domain", "add", "example.com", "--addr", p.admin)
	if err == nil || strings.Count(errOut, "already exists") != 1 {
		t.Errorf("domain add of an existing domain: %v %q, want \"already exists\" once", err, errOut)
	}
}
