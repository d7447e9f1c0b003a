package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAddIfNotExists: domain add, mailbox add and forward add of an
// entry that exists exited 1 with "already exists", so configuration
// management had to match on the text to run a play again. With
// --if-not-exists such an entry is a success that says it was there,
// in text and in JSON. A mailbox there keeps its password, and the
// answer is the same whether the password given is its own or not; a
// forward there with other targets is a failure.
func TestAddIfNotExists(t *testing.T) {
	p := startSoloMail(t, "ann@example.com") // password "pw"
	t.Run("domain", func(t *testing.T) { testDomainIfNotExists(t, p) })
	t.Run("mailbox", func(t *testing.T) { testMailboxIfNotExists(t, p) })
	t.Run("forward", func(t *testing.T) { testForwardIfNotExists(t, p) })
}

func testDomainIfNotExists(t *testing.T, p *proc) {
	if _, errOut, err := cli(t, "", "domain", "add", "example.com", "--addr", p.admin); exitCode(t, err) != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("without the flag: %v %q", err, errOut)
	}
	out := mustCLI(t, "domain", "add", "--if-not-exists", "Example.COM", "new.org", "--addr", p.admin)
	if !strings.Contains(out, "domain Example.COM already exists\n") || !strings.Contains(out, "added 1 domain(s), 1 already existed") {
		t.Errorf("domain add --if-not-exists said %q", out)
	}
	var res struct {
		Status  string   `json:"status"`
		Added   []string `json:"added"`
		Existed []string `json:"already_existed"`
	}
	out = mustCLI(t, "domain", "add", "--if-not-exists", "--json", "new.org", "third.org", "--addr", p.admin)
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Status != "ok" || len(res.Added) != 1 || res.Added[0] != "third.org" ||
		len(res.Existed) != 1 || res.Existed[0] != "new.org" {
		t.Errorf("domain add --if-not-exists --json: %v %s", err, out)
	}
	// Another failure still stops it, naming what was done.
	_, errOut, err := cli(t, "", "domain", "add", "--if-not-exists", "new.org", "fourth.org", "bad_domain", "fifth.org", "--addr", p.admin)
	if exitCode(t, err) != 1 || !strings.Contains(errOut, "added before it: fourth.org; already there: new.org; not tried: fifth.org") {
		t.Errorf("a bad domain among them: %v %q", err, errOut)
	}
}

func testMailboxIfNotExists(t *testing.T, p *proc) {
	if _, errOut, err := cli(t, "", "mailbox", "add", "ann@example.com", "--password", "pw", "--addr", p.admin); exitCode(t, err) != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("without the flag: %v %q", err, errOut)
	}
	// The same words whether the password is the mailbox's or not.
	same := mustCLI(t, "mailbox", "add", "--if-not-exists", "ann@example.com", "--password", "pw", "--addr", p.admin)
	other := mustCLI(t, "mailbox", "add", "--if-not-exists", "ann@example.com", "--password", "another-pw", "--quota", "1K", "--addr", p.admin)
	if same != other || !strings.Contains(other, "mailbox ann@example.com already exists") || strings.Contains(strings.ToLower(other), "match") {
		t.Errorf("mailbox add --if-not-exists said %q with its password, %q with another", same, other)
	}
	var js struct {
		Status  string `json:"status"`
		Address string `json:"address"`
		Existed *bool  `json:"already_existed"`
	}
	out := mustCLI(t, "mailbox", "add", "--if-not-exists", "--json", "ann@example.com", "--password", "another-pw", "--addr", p.admin)
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Status != "ok" || js.Existed == nil || !*js.Existed {
		t.Errorf("mailbox add --if-not-exists --json of an existing one: %v %s", err, out)
	}
	out = mustCLI(t, "mailbox", "add", "--if-not-exists", "--json", "bea@example.com", "--password", "pw-bea", "--addr", p.admin)
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Existed == nil || *js.Existed || js.Address != "bea@example.com" {
		t.Errorf("mailbox add --if-not-exists --json of a new one: %v %s", err, out)
	}
	// The password and quota stand: the old password logs in, the
	// other does not.
	for pw, want := range map[string]string{"pw": "+OK", "another-pw": "-ERR"} {
		pop := dialLines(t, p.pop3)
		pop.expect("+OK")
		pop.send("USER ann@example.com")
		pop.expect("+OK")
		pop.send("PASS " + pw)
		pop.expect(want)
	}
	if out := mustCLI(t, "mailbox", "ls", "example.com", "--addr", p.admin); !strings.Contains(out, "unlimited") {
		t.Errorf("the quota changed:\n%s", out)
	}
}

func testForwardIfNotExists(t *testing.T, p *proc) {
	mustCLI(t, "forward", "add", "team@example.com", "--to", "a@x.org", "--to", "ann@example.com", "--addr", p.admin)
	out := mustCLI(t, "forward", "add", "--if-not-exists", "Team@example.com", "--to", "ANN@example.com", "--to", "a@X.org", "--addr", p.admin)
	if !strings.Contains(out, "already exists") {
		t.Errorf("forward add --if-not-exists, the same targets in another order and case: %q", out)
	}
	var js struct {
		Status  string   `json:"status"`
		Address string   `json:"address"`
		Targets []string `json:"targets"`
		Existed *bool    `json:"already_existed"`
	}
	out = mustCLI(t, "forward", "add", "--if-not-exists", "--json", "team@example.com", "--to", "a@x.org", "--to", "ann@example.com", "--addr", p.admin)
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Status != "ok" || js.Existed == nil || !*js.Existed || len(js.Targets) != 2 {
		t.Errorf("forward add --if-not-exists --json of an existing one: %v %s", err, out)
	}
	out = mustCLI(t, "forward", "add", "--if-not-exists", "--json", "@example.com", "--to", "ann@example.com", "--addr", p.admin)
	if err := json.Unmarshal([]byte(out), &js); err != nil || js.Existed == nil || *js.Existed || js.Address != "@example.com" {
		t.Errorf("forward add --if-not-exists --json of a new catch-all: %v %s", err, out)
	}
	if out := mustCLI(t, "forward", "add", "--if-not-exists", "@example.com", "--to", "ann@example.com", "--addr", p.admin); !strings.Contains(out, "already exists") {
		t.Errorf("the catch-all again: %q", out)
	}
	// One with the same targets and another keep-copy is named as
	// that, not as "other targets".
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"--to", "a@x.org"}, "exists with other targets"},
		{[]string{"--to", "a@x.org", "--to", "ann@example.com", "--to", "b@x.org"}, "exists with other targets"},
		{[]string{"--to", "a@x.org", "--to", "ann@example.com", "--keep-copy"}, "exists with these targets and keep-copy no"},
	} {
		args := append([]string{"forward", "add", "--if-not-exists", "team@example.com", "--addr", p.admin}, tc.args...)
		_, errOut, err := cli(t, "", args...)
		if exitCode(t, err) != 1 || !strings.Contains(errOut, tc.says) || !strings.Contains(errOut, "--replace") {
			t.Errorf("forward add --if-not-exists %v, another forward there: %v %q, want it to say %q", tc.args, err, errOut, tc.says)
		}
	}
	if out := mustCLI(t, "forward", "ls", "--addr", p.admin); !strings.Contains(out, "a@x.org,ann@example.com") {
		t.Errorf("the forward changed:\n%s", out)
	}
	if _, errOut, err := cli(t, "", "forward", "add", "--if-not-exists", "--replace", "team@example.com", "--to", "a@x.org", "--addr", p.admin); exitCode(t, err) != 1 || !strings.Contains(errOut, "if-not-exists") {
		t.Errorf("--if-not-exists with --replace: %v %q", err, errOut)
	}
}

// A node of an earlier release has no route for one forward (405, as
// net/http answers a method the path does not take): forward add
// --if-not-exists finds the forward in its domain's listing instead.
func TestForwardIfNotExistsOnAnOlderNode(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "POST":
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":"exists","message":"forward team@example.com already exists (replace it to change its targets)"}`)
		case r.URL.Path == "/v1/forwards" && r.URL.Query().Get("domain") == "example.com":
			io.WriteString(w, `[{"address":"a@example.com","targets":["x@y.org"],"keep_copy":false},{"address":"team@example.com","targets":["b@y.org"],"keep_copy":false}]`)
		default:
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		}
	}))
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	if out := mustCLI(t, "forward", "add", "--if-not-exists", "team@example.com", "--to", "b@y.org", "--addr", addr); !strings.Contains(out, "already exists") {
		t.Errorf("the same forward: %q", out)
	}
	if _, errOut, err := cli(t, "", "forward", "add", "--if-not-exists", "team@example.com", "--to", "x@y.org", "--addr", addr); exitCode(t, err) != 1 || !strings.Contains(errOut, "exists with other targets (b@y.org") {
		t.Errorf("another forward: %v %q", err, errOut)
	}
}

// mailbox add --if-not-exists of a mailbox that mailbox rm is emptying
// said "already exists" (exit 0), and then the mailbox went: a play
// that ran it went on as if the mailbox were there. It now exits 1,
// saying the mailbox is being removed. The removal is a real one, of a
// mailbox of many messages on a node that removes one per raft entry.
func TestMailboxAddIfNotExistsWhileBeingRemoved(t *testing.T) {
	p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	p.start(t, append(p.smtpArgs(t), "--bootstrap", "--replicas", "1", "--raft-entry-messages", "1")...)
	p.waitLeader(t, 30*time.Second)
	waitLog(t, p, `msg="node running"`)
	mustCLI(t, "domain", "add", "example.com", "--addr", p.admin)
	a := "zed@example.com"
	mustCLI(t, "mailbox", "add", a, "--password", "pw", "--addr", p.admin)
	files := map[string]string{}
	for i := range 1500 {
		files[fmt.Sprintf("Maildir/cur/1700000000.M%d.host:2,S", i)] = fmt.Sprintf("Subject: %d\r\n\r\n%d\r\n", i, i)
	}
	tarFile := filepath.Join(t.TempDir(), "zed.tar")
	writeTar(t, tarFile, files)
	if res := restore(t, p, a, tarFile); res.Added != len(files) {
		t.Fatalf("restore said %+v", res)
	}
	rm := make(chan error, 1)
	go func() {
		_, errOut, err := cli(t, "", "mailbox", "rm", a, "--addr", p.admin)
		if err != nil {
			err = fmt.Errorf("%w: %s", err, errOut)
		}
		rm <- err
	}()
	waitRemoving(t, p, a)
	out, errOut, err := cli(t, "", "mailbox", "add", "--if-not-exists", a, "--password", "pw", "--addr", p.admin)
	if exitCode(t, err) != 1 || !strings.Contains(errOut, "being removed") || strings.Contains(out, "already exists") {
		t.Errorf("mailbox add --if-not-exists during its removal: %v, stdout %q, stderr %q", err, out, errOut)
	}
	if err := <-rm; err != nil {
		t.Fatalf("mailbox rm: %v", err)
	}
	// Gone now: the add makes it anew.
	if out := mustCLI(t, "mailbox", "add", "--if-not-exists", a, "--password", "pw", "--addr", p.admin); !strings.Contains(out, "created mailbox") {
		t.Errorf("mailbox add --if-not-exists after the removal: %q", out)
	}
}

// waitRemoving waits until the admin API shows addr as being removed.
func waitRemoving(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, err := http.NewRequest("GET", "http://"+p.admin+"/v1/mailboxes/"+addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+cliSecret)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var mb struct {
				Removing bool `json:"removing"`
			}
			err = json.NewDecoder(resp.Body).Decode(&mb)
			resp.Body.Close()
			if err == nil && mb.Removing {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s never shown as being removed", addr)
}
