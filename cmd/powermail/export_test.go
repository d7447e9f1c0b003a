package main

import (
	"archive/tar"
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
