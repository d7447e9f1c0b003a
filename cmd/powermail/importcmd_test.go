package main

import (
	"encoding/json"
	"strings"
	"testing"

	"powermail/fsm"
	"powermail/node"
)

// importHash is an argon2id hash as a CSV field: its parameters hold
// commas, so it is quoted.
const importHash = `"$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"`

// imported returns the addresses of the mailboxes the recorded batch
// requests asked for. The listings of forwards after a batch (import
// warns of mailboxes whose mail a forward takes) are passed over.
func imported(t *testing.T, rec *recorder) []string {
	t.Helper()
	var out []string
	for _, c := range rec.calls {
		if strings.HasPrefix(c, "GET /v1/forwards?") {
			continue
		}
		body, ok := strings.CutPrefix(c, "POST /v1/mailboxes/batch ")
		if !ok {
			t.Fatalf("unexpected request %q", c)
		}
		var req struct {
			Mailboxes []node.MailboxRequest `json:"mailboxes"`
		}
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		for _, m := range req.Mailboxes {
			out = append(out, m.Address)
		}
	}
	return out
}

// A comment is a line whose first non-blank character is "#" followed by
// a blank or the end of the line, or whose first field cannot be an
// address (no "@"): "#" may begin an address (RFC 5322 atext), and such
// a row is imported.
func TestMailboxImportComments(t *testing.T) {
	rec := &recorder{reply: `{"status":"ok"}`}
	addr := rec.start(t)
	csv := strings.Join([]string{
		"# address,password_hash,quota",
		"#",
		"   # an indented comment, b@example.com",
		"#old-format line without an address",
		"#sales@example.com," + importHash,
		"",
		"a@example.com," + importHash + ",1G",
		"\t# b@example.com," + importHash,
	}, "\n") + "\n"
	out, errOut, err := cli(t, csv, "mailbox", "import", "-", "--addr", addr)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	got := imported(t, rec)
	if strings.Join(got, " ") != "#sales@example.com a@example.com" {
		t.Errorf("imported %q, want #sales@example.com and a@example.com", got)
	}
	if !strings.Contains(out, "imported 2 mailboxes") {
		t.Errorf("import said %q", out)
	}
}

// A row with more fields than address, hash and quota is refused, and
// the error names its line; nothing after it is sent.
func TestMailboxImportRefusesExtraColumns(t *testing.T) {
	rec := &recorder{reply: `{"status":"ok"}`}
	addr := rec.start(t)
	csv := "# header\na@example.com," + importHash + "\nb@example.com," + importHash + ",1G,admin\nc@example.com," + importHash + "\n"
	_, errOut, err := cli(t, csv, "mailbox", "import", "-", "--addr", addr)
	if err == nil || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "4 fields") {
		t.Fatalf("import of a row with 4 fields: %v\n%s", err, errOut)
	}
	if len(rec.calls) != 0 {
		t.Errorf("requests %q before the bad line was refused", rec.calls)
	}
}

// An import whose last batch's outcome was hidden is resumed with
// --skip-existing: the rows already there are skipped and counted, the
// rest created; without it the rerun stops on "exists".
func TestMailboxImportResumesWithSkipExisting(t *testing.T) {
	p := startSolo(t)
	h, err := fsm.HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	row := func(addr string) string { return addr + `,"` + h + `"` + "\n" }
	mustImport := func(csv string, args ...string) string {
		t.Helper()
		out, errOut, err := cli(t, csv, append([]string{"mailbox", "import", "-", "--addr", p.admin}, args...)...)
		if err != nil {
			t.Fatalf("import %v: %v\n%s", args, err, errOut)
		}
		return out
	}
	mustImport(row("a@example.com") + row("b@example.com"))
	all := row("a@example.com") + row("b@example.com") + row("c@example.com")
	if _, errOut, err := cli(t, all, "mailbox", "import", "-", "--addr", p.admin); err == nil || !strings.Contains(errOut, "already exists") {
		t.Fatalf("rerun without --skip-existing: %v\n%s", err, errOut)
	}
	if out := mustImport(all, "--skip-existing", "--batch", "2"); !strings.Contains(out, "imported 1 mailboxes, skipped 2 that already existed") {
		t.Fatalf("rerun with --skip-existing said %q", out)
	}
	if out := mustCLI(t, "mailbox", "ls", "--addr", p.admin); !strings.Contains(out, "c@example.com") {
		t.Fatalf("c@example.com was not created:\n%s", out)
	}
	other, _ := fsm.HashPassword("other")
	_, errOut, err := cli(t, "a@example.com,\""+other+"\"\n", "mailbox", "import", "-", "--skip-existing", "--addr", p.admin)
	if err == nil || !strings.Contains(errOut, "another password") {
		t.Fatalf("an existing mailbox with another password: %v\n%s", err, errOut)
	}
}

// A CSV saved by a spreadsheet starts with a UTF-8 byte order mark: it
// became part of the first address, a mailbox "\ufeffann@" that no mail
// for ann@ reaches.
func TestMailboxImportSkipsByteOrderMark(t *testing.T) {
	rec := &recorder{reply: `{"status":"ok"}`}
	addr := rec.start(t)
	csv := "\ufeffann@example.com," + importHash + "\r\nbob@example.com," + importHash + "\r\n"
	if _, errOut, err := cli(t, csv, "mailbox", "import", "-", "--addr", addr); err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	if got := imported(t, rec); len(got) != 2 || got[0] != "ann@example.com" || got[1] != "bob@example.com" {
		t.Errorf("imported %q", got)
	}
}

// A Dovecot passwd file prefixes each hash with its scheme:
// "{BLF-CRYPT}$2y$..." or "{ARGON2ID}$argon2id$...". Those schemes are
// the hashes a mailbox takes, so the prefix is dropped and the mailbox
// stores the bare hash (a rerun with the bare hash finds it the same);
// a scheme it cannot take is refused by name, with its line.
func TestMailboxImportTakesDovecotSchemes(t *testing.T) {
	p := startSolo(t)
	argon, err := fsm.HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	const bcryptHash = "$2y$05$nqgepWUJhDZYfT4e2tJAG.Y8U.IVNDgqYnnSGebw40wAfE6RLIu6a"
	dovecot := "a@example.com,{BLF-CRYPT}" + bcryptHash + "\n" +
		"b@example.com,\"{ARGON2ID}" + argon + "\"\n" +
		"c@example.com,{CRYPT}" + bcryptHash + "\n"
	if out, errOut, err := cli(t, dovecot, "mailbox", "import", "-", "--addr", p.admin); err != nil || !strings.Contains(out, "imported 3 mailboxes") {
		t.Fatalf("import of Dovecot schemes: %v\n%s%s", err, out, errOut)
	}
	bare := "a@example.com," + bcryptHash + "\nb@example.com,\"" + argon + "\"\nc@example.com," + bcryptHash + "\n"
	out, errOut, err := cli(t, bare, "mailbox", "import", "-", "--skip-existing", "--addr", p.admin)
	if err != nil || !strings.Contains(out, "skipped 3") {
		t.Fatalf("rerun with the bare hashes: %v\n%s%s", err, out, errOut)
	}
	_, errOut, err = cli(t, "d@example.com,{SHA512-CRYPT}$6$salt$hash\n", "mailbox", "import", "-", "--addr", p.admin)
	if err == nil || !strings.Contains(errOut, "line 1") || !strings.Contains(errOut, "{SHA512-CRYPT}") {
		t.Fatalf("import of a {SHA512-CRYPT} hash: %v\n%s", err, errOut)
	}
}

// A row whose hash the directory would refuse (MD5-crypt under {CRYPT},
// a bcrypt hash cut short) is named by its line before anything is
// sent: the node's refusal named only the mailbox, "after 0
// mailboxes", and failed the whole batch.
func TestMailboxImportNamesTheLineOfABadHash(t *testing.T) {
	p := startSolo(t)
	const bcryptHash = "$2y$05$nqgepWUJhDZYfT4e2tJAG.Y8U.IVNDgqYnnSGebw40wAfE6RLIu6a"
	for _, bad := range []string{"{CRYPT}$1$salt$abcdefghijklmnopqrstuv", bcryptHash[:30]} {
		in := "a@example.com," + bcryptHash + "\n# a comment\nb@example.com," + bad + "\n"
		_, errOut, err := cli(t, in, "mailbox", "import", "-", "--addr", p.admin)
		if err == nil || !strings.Contains(errOut, "line 3") || !strings.Contains(errOut, "b@example.com") {
			t.Errorf("import with %q on line 3: %v\n%s", bad, err, errOut)
		}
	}
	if out := mustCLI(t, "mailbox", "ls", "--addr", p.admin); strings.Contains(out, "a@example.com") {
		t.Errorf("a row before the bad one was imported:\n%s", out)
	}
}
