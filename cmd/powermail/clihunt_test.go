package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIMistakesNamedPlainly: mistakes made before any request is sent
// end in one line that names the mistake as the operator made it, never
// as a Go parser or cobra's command finder saw it.
func TestCLIMistakesNamedPlainly(t *testing.T) {
	down := freeAddr(t) // nothing listens: a request that gets that far fails
	for _, f := range []struct {
		args    []string
		want    string
		notWant string
	}{
		// A mistyped flag before the command took the command as its
		// value, and the error blamed the subcommand.
		{[]string{"--jsno", "cluster", "status"}, "unknown flag: --jsno", "unknown command"},
		{[]string{"--bogus", "domain", "ls"}, "unknown flag: --bogus", "unknown command"},
		{[]string{"--timeout", "domain", "ls"}, `--timeout "domain"`, "unknown command"},
		{[]string{"bogus"}, `unknown command "bogus" for "powermail"`, ""},
		{[]string{"domian", "ls"}, "Did you mean this?; domain", ""},
		// Flag values: what is wanted, not strconv's or time's wording.
		{[]string{"settings", "set", "--replicas", "abc"}, `--replicas "abc": want a whole number`, "strconv"},
		{[]string{"domain", "ls", "--json=maybe"}, `--json "maybe": want true or false`, "strconv"},
		{[]string{"domain", "ls", "--timeout", "5"}, `--timeout "5": want a duration with a unit, say 30s or 5m`, "time:"},
		{[]string{"cluster", "check-state", "--wait", "1d"}, `--wait "1d": want a duration with a unit`, "time:"},
		// passwd has no --no-password: the hint named a flag it refuses.
		{[]string{"mailbox", "passwd", "a@example.com"}, "no password given (use --password or stdin)", "--no-password"},
		// The node refuses a batch over 10000 only after the whole file
		// was read; an impossible batch size is said at once.
		{[]string{"mailbox", "import", "-", "--batch", "20000"}, "--batch 20000: give 1 to 10000", ""},
		{[]string{"mailbox", "import", "-", "--batch", "0"}, "--batch 0: give 1 to 10000", ""},
		{[]string{"mailbox", "restore", "a@example.com", "-", "--max-message-size", "0"}, "--max-message-size 0: give a size above 0", "max_bytes"},
	} {
		_, errOut, err := cli(t, "", append(f.args, "--addr", down)...)
		line := strings.TrimSpace(errOut)
		if err == nil || !strings.Contains(line, f.want) || strings.Contains(line, "\n") || (f.notWant != "" && strings.Contains(line, f.notWant)) {
			t.Errorf("%v: err=%v stderr=%q, want one line with %q (and without %q)", f.args, err, errOut, f.want, f.notWant)
		}
	}
	// A client setting from the environment is named as such.
	c := cliEnv(t, []string{"POWERMAIL_TIMEOUT=5"}, "domain", "ls", "--addr", down)
	if !strings.Contains(c, `POWERMAIL_TIMEOUT "5": want a duration with a unit`) {
		t.Errorf("POWERMAIL_TIMEOUT=5: %q", c)
	}
	// help of something that is no command fails (it printed the
	// root's help, exit 0); help of a command still works.
	if _, errOut, err := cli(t, "", "help", "bogus"); err == nil || !strings.Contains(errOut, `unknown help topic "bogus"`) {
		t.Errorf("help bogus: %v %q", err, errOut)
	}
	if out := mustCLI(t, "help", "domain", "add"); !strings.Contains(out, "Host one or more domains") {
		t.Errorf("help domain add: %q", out)
	}
	// No arguments at all still prints the help, and succeeds.
	if out := mustCLI(t); !strings.Contains(out, "Available Commands") {
		t.Errorf("powermail alone printed %q", out)
	}
}

// cliEnv runs a client command with extra environment and returns its
// stderr; the command must fail.
func cliEnv(t *testing.T, env []string, args ...string) string {
	t.Helper()
	c := exec.Command(binary, args...)
	c.Env = append(os.Environ(), env...)
	var errb strings.Builder
	c.Stderr = &errb
	if err := c.Run(); err == nil {
		t.Fatalf("%v with %v succeeded", args, env)
	}
	return errb.String()
}

// TestCLIPartialFailuresExitNonZero: a command that leaves part of its
// work undone says which part and exits non-zero, so that a script does
// not take it for done.
func TestCLIPartialFailuresExitNonZero(t *testing.T) {
	p := startSolo(t)
	// The first domain exists: the others were not tried, and the
	// message said nothing of them.
	_, errOut, err := cli(t, "", "domain", "add", "example.com", "new1.org", "new2.org", "--addr", p.admin)
	if err == nil || !strings.Contains(errOut, "already exists") || !strings.Contains(errOut, "not tried: new1.org, new2.org") {
		t.Errorf("domain add with the first existing: %v %q", err, errOut)
	}
	mustCLI(t, "domain", "add", "new1.org", "new2.org", "new3.org", "--addr", p.admin)
	_, errOut, err = cli(t, "", "domain", "add", "new4.org", "new1.org", "new5.org", "--addr", p.admin)
	if err == nil || !strings.Contains(errOut, "added before it: new4.org; not tried: new5.org") {
		t.Errorf("domain add with the second existing: %v %q", err, errOut)
	}

	// A restore that skipped messages over --max-message-size restored
	// only part of the mailbox, and exited 0.
	mustCLI(t, "mailbox", "add", "ann@example.com", "--password", "pw", "--addr", p.admin)
	tarFile := filepath.Join(t.TempDir(), "box.tar")
	writeTar(t, tarFile, map[string]string{
		"Maildir/cur/1.small:2,S": "Subject: small\r\n\r\nhi\r\n",
		"Maildir/cur/2.large:2,":  "Subject: large\r\n\r\n" + strings.Repeat("x", 4096) + "\r\n",
	})
	out, errOut, err := cli(t, "", "mailbox", "restore", "ann@example.com", tarFile, "--max-message-size", "1K", "--json", "--addr", p.admin)
	var res struct {
		Added    int `json:"added"`
		TooLarge int `json:"too_large"`
	}
	if err == nil || json.Unmarshal([]byte(out), &res) != nil || res.Added != 1 || res.TooLarge != 1 ||
		!strings.Contains(errOut, "1 message(s) larger than --max-message-size 1K were not restored") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("restore with a message too large: %v out=%q err=%q", err, out, errOut)
	}
	// A file that is no tar was refused in archive/tar's words.
	notTar := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notTar, []byte(strings.Repeat("just some text, not an archive\n", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := cli(t, "", "mailbox", "restore", "ann@example.com", notTar, "--addr", p.admin); err == nil ||
		!strings.Contains(errOut, "not a tar archive") || strings.Contains(errOut, "archive/tar") {
		t.Errorf("restore of a text file: %v %q", err, errOut)
	}
	// Run again with room for it, the rest is added and it succeeds.
	if out := mustCLI(t, "mailbox", "restore", "ann@example.com", tarFile, "--json", "--addr", p.admin); json.Unmarshal([]byte(out), &res) != nil || res.Added != 1 || res.TooLarge != 0 {
		t.Errorf("restore again: %q", out)
	}
}

// TestCLIMistakesNamedPlainlyMore: more mistakes that ended in a
// message about something else.
func TestCLIMistakesNamedPlainlyMore(t *testing.T) {
	rec := &recorder{reply: `{"status":"ok"}`}
	addr := rec.start(t)
	// A comma-separated --to was refused as a local part holding "@".
	_, errOut, err := cli(t, "", "forward", "add", "x@example.com", "--to", "a@b.org,c@d.org", "--addr", addr)
	if err == nil || !strings.Contains(errOut, "give each target its own --to") || len(rec.calls) != 0 {
		t.Errorf("forward add --to a,b: %v %q, requests %q", err, errOut, rec.calls)
	}
	// The archive's temporary name is the CLI's business, not the
	// operator's: the error names --out.
	_, errOut, err = cli(t, "", "mailbox", "export", "a@example.com", "--out", "/nonexistent-dir/box.tar", "--addr", addr)
	if err == nil || strings.Contains(errOut, ".partial-") || !strings.Contains(errOut, "--out /nonexistent-dir/box.tar") {
		t.Errorf("export to a missing directory: %v %q", err, errOut)
	}
	// --addr at a mail port: the greeting is not HTTP.
	ln := serveRaw(t, func(c net.Conn) {
		c.Write([]byte("220 mx.example ESMTP\r\n"))
		c.Close()
	})
	// The greeting may come before the request is written or after:
	// net/http then logs an "Unsolicited response" and fails with
	// "readLoopPeekFailLocked: %!w(<nil>)". Either way, one plain line.
	for range 5 {
		_, errOut, err = cli(t, "", "domain", "ls", "--addr", ln.Addr().String())
		if err == nil || !strings.Contains(errOut, "is --addr a node's admin address?") || strings.Contains(errOut, "net/http") ||
			strings.Contains(errOut, "%!") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("--addr at an SMTP port: %v %q", err, errOut)
		}
	}
	// ".." as a name went out as a path step: the node's router
	// redirected it away and the CLI reported a 404 page.
	rec.calls = nil
	mustCLI(t, "domain", "rm", "..", "--addr", addr)
	mustCLI(t, "mailbox", "rm", ".", "--addr", addr)
	if len(rec.calls) < 2 || !strings.HasPrefix(rec.calls[0], "DELETE /v1/domains/%2E%2E ") || !strings.HasPrefix(rec.calls[1], "DELETE /v1/mailboxes/%2E ") {
		t.Errorf("dot names sent as %q", rec.calls)
	}
	// --addr with a path: every route is a plain 404.
	mux := httptest.NewServer(http.NotFoundHandler())
	defer mux.Close()
	_, errOut, err = cli(t, "", "domain", "ls", "--addr", mux.URL+"/v1")
	if err == nil || !strings.Contains(errOut, "404 page not found") || !strings.Contains(errOut, "is --addr a node's admin address") {
		t.Errorf("--addr with a path: %v %q", err, errOut)
	}
	// An https --addr whose certificate no trusted CA issued: say --ca.
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	_, errOut, err = cli(t, "", "domain", "ls", "--addr", tlsSrv.URL)
	if err == nil || !strings.Contains(errOut, "give --ca") {
		t.Errorf("--addr https with an unknown CA: %v %q", err, errOut)
	}
	// join may add a non-voter: the help said "as a voter".
	if out := mustCLI(t, "cluster", "join", "--help"); !strings.Contains(out, "non-voter") {
		t.Errorf("cluster join --help:\n%s", out)
	}
}

// TestCLIRefusesInvalidUTF8: a value that is not UTF-8 went out with
// each bad byte as U+FFFD, so "\xff@example.com" made a mailbox
// "\ufffd@example.com" that the CLI confirmed under the bytes typed.
func TestCLIRefusesInvalidUTF8(t *testing.T) {
	rec := &recorder{reply: `{"status":"ok"}`}
	addr := rec.start(t)
	for _, f := range []struct {
		args []string
		want string
	}{
		{[]string{"mailbox", "add", "\xff\xfe@example.com", "--password", "pw"}, `address "\xff\xfe@example.com" is not valid UTF-8`},
		{[]string{"mailbox", "passwd", "a@example.com", "--password", "caf\xe9"}, "password is not valid UTF-8"},
		{[]string{"forward", "add", "a@example.com", "--to", "b\xff@example.org"}, "targets"},
		{[]string{"domain", "add", "caf\xe9.example"}, "is not valid UTF-8"},
	} {
		_, errOut, err := cli(t, "", append(f.args, "--addr", addr)...)
		if err == nil || !strings.Contains(errOut, f.want) || strings.Contains(errOut, "caf\xe9\"") {
			t.Errorf("%q: %v %q, want %q", f.args, err, errOut, f.want)
		}
	}
	if len(rec.calls) != 0 {
		t.Errorf("requests sent: %q", rec.calls)
	}
}
