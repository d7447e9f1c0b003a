package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"powermail/fsm"
)

// TestCLIBadInputWithoutACluster: mistakes an operator makes before any
// request, or with --addr pointing at something that is not a node, each
// end in one line that names the mistake and a non-zero exit.
func TestCLIBadInputWithoutACluster(t *testing.T) {
	// Not a node: a web server that answers with HTML, as one on a
	// mistyped port would.
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/domains" {
			w.Write([]byte("<html><body>welcome</body></html>\n"))
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("<!DOCTYPE HTML>\n<html>\n<body>\n<h1>Not found</h1>\n</body>\n</html>\n"))
	}))
	defer web.Close()
	empty := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	down := freeAddr(t) // nothing listens: requests that get that far fail
	for _, f := range []struct {
		args []string
		want string
	}{
		{[]string{"domain", "add"}, "usage: powermail domain add DOMAIN..."},
		// A word near no command was refused without the commands there
		// are, which a command group's refusal lists.
		{[]string{"users", "ls"}, `unknown command "users" for "powermail" (commands: cluster, completion, domain, forward, mailbox, queue, server, settings, storage)`},
		{[]string{"domain", "ls", "extra"}, `domain ls takes no arguments, got "extra"`},
		{[]string{"storage", "verify", "now"}, "storage verify takes no arguments"},
		{[]string{"mailbox", "add", "a@example.com", "--password", "x", "--no-password"}, "[no-password password] were all set"},
		{[]string{"domain", "ls", "--timeout", "0"}, "--timeout 0s: give a duration above 0"},
		{[]string{"cluster", "check-state", "--wait", "0"}, "--wait 0s: give a duration above 0"},
		{[]string{"domain", "ls", "--token", "", "--token-file", empty}, "token file " + empty + " is empty"},
		// A --token-file given is read even with POWERMAIL_TOKEN set (cli
		// sets it): the environment's token was sent in its place, and a
		// missing file or one for another cluster went unnoticed.
		{[]string{"domain", "ls", "--token-file", empty}, "token file " + empty + " is empty"},
		{[]string{"domain", "ls", "--token-file", empty + ".missing"}, "read token file"},
		{[]string{"domain", "ls", "--addr", web.URL}, "did not answer as a PowerMail admin API does"},
		{[]string{"cluster", "status", "--addr", web.URL}, "answered 404 Not Found, not as a PowerMail admin API does"},
		{[]string{"storage", "verify", "--addr", web.URL}, "answered 404 Not Found, not as a PowerMail admin API does"},
		{[]string{"server", "--data", t.TempDir(), "--account-check-interval", "-1s"}, "--account-check-interval -1s: must not be negative"},
		{[]string{"server", "--data", t.TempDir(), "--raft-entry-messages", "0"}, "--raft-entry-messages 0: must be at least 1"},
		{[]string{"server", "--data", t.TempDir(), "--queue-lifetime", "-1h"}, "--queue-lifetime -1h0m0s: must be positive"},
	} {
		args := f.args
		if args[0] != "server" && !strings.Contains(strings.Join(args, " "), "--addr") {
			args = append(args, "--addr", down)
		}
		_, errOut, err := cli(t, "", args...)
		line := strings.TrimSpace(errOut)
		if err == nil || !strings.Contains(line, f.want) || strings.Contains(line, "\n") || strings.Contains(line, "<html") {
			t.Errorf("%v: err=%v stderr=%q, want one line with %q", f.args, err, errOut, f.want)
		}
	}
}

// TestSettingsHelpNamesEveryEncoding: the --command-encoding help lists
// what each encoding adds, up to the newest this release writes; it had
// fallen one behind, so an operator could not tell what 7 was.
func TestSettingsHelpNamesEveryEncoding(t *testing.T) {
	out := mustCLI(t, "settings", "set", "--help")
	var flagLine string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "--command-encoding int") {
			flagLine = l
		}
	}
	for enc := 1; enc <= fsm.NewestEncoding; enc++ {
		if !strings.Contains(flagLine, fmt.Sprintf(" %d ", enc)) && !strings.Contains(flagLine, fmt.Sprintf("(%d ", enc)) {
			t.Errorf("--command-encoding help does not say what %d is: %q", enc, flagLine)
		}
	}
}
