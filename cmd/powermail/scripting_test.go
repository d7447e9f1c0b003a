package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// exitCode is the exit status of a command cli ran: 0 for none.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("command did not run: %v", err)
	return -1
}

// statusCLI runs cluster status with args and returns its output; the
// command may exit 1 (a cluster that is not healthy) but must print the
// status all the same.
func statusCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, "", append([]string{"cluster", "status"}, args...)...)
	if code := exitCode(t, err); code > 1 || out == "" {
		t.Fatalf("cluster status %v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
	}
	return out
}

const (
	upNode   = `{"id":"%s","role":"%s","suffrage":"voter","cluster_addr":"127.0.0.1:1","admin_addr":"127.0.0.1:2","reachable":true,"free_bytes":1000000,"total_bytes":2000000}`
	downNode = `{"id":"n3","role":"unreachable","suffrage":"voter","cluster_addr":"127.0.0.1:3","admin_addr":"127.0.0.1:4","reachable":false,"error":"connection refused"}`
)

func nodeJSON(id, role string) string {
	return fmt.Sprintf(upNode, id, role)
}

// TestClusterStatusExitsNonZeroWhenUnhealthy: a monitoring check runs
// cluster status and reads its exit status. It exited 0 with a node
// down, with no leader, on a removed node and with bodies short of R, so
// the check never fired. Not healthy now exits 1, with the status on
// stdout as before (valid JSON with --json) and one line on stderr that
// says what is wrong.
func TestClusterStatusExitsNonZeroWhenUnhealthy(t *testing.T) {
	three := `[` + nodeJSON("n1", "leader") + `,` + nodeJSON("n2", "follower") + `,` + nodeJSON("n3", "follower") + `]`
	for _, tc := range []struct {
		name, reply string
		code        int
		want        string // on stderr
	}{
		{"healthy", `{"leader":"n1","health":"healthy","self":"n1","nodes":` + three + `,"redundancy":{"bodies":10}}`, 0, ""},
		{"node down", `{"leader":"n1","health":"degraded","self":"n1","nodes":[` + nodeJSON("n1", "leader") + `,` + nodeJSON("n2", "follower") + `,` + downNode + `]}`,
			1, "degraded: n3 unreachable"},
		{"no leader", `{"leader":"","health":"unavailable","self":"n2","nodes":[` + nodeJSON("n2", "candidate") + `,` + downNode + `]}`,
			1, "unavailable: no leader"},
		{"removed", `{"leader":"n1","health":"healthy","self":"n4","removed":true,"nodes":` + three + `}`,
			1, "n4 is no longer a member"},
		{"under R", `{"leader":"n1","health":"healthy","self":"n1","nodes":` + three + `,"redundancy":{"bodies":10,"under_replicated":3,"unrepairable":1}}`,
			1, "3 bodies under-replicated (1 unrepairable)"},
	} {
		rec := &recorder{reply: tc.reply}
		addr := rec.start(t)
		for _, asJSON := range []bool{false, true} {
			args := []string{"cluster", "status", "--addr", addr}
			if asJSON {
				args = append(args, "--json")
			}
			out, errOut, err := cli(t, "", args...)
			if code := exitCode(t, err); code != tc.code {
				t.Errorf("%s (json %v): exit %d, want %d; stderr %q", tc.name, asJSON, code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || (tc.want == "") != (errOut == "") {
				t.Errorf("%s (json %v): stderr %q, want one line with %q", tc.name, asJSON, errOut, tc.want)
			}
			var st map[string]any
			if asJSON && json.Unmarshal([]byte(out), &st) != nil {
				t.Errorf("%s: --json printed no JSON: %q", tc.name, out)
			}
			if !asJSON && !strings.Contains(out, "SUFFRAGE") {
				t.Errorf("%s: no table: %q", tc.name, out)
			}
		}
	}
}

// TestClusterStatusHeadlineAgreesWithItsExit: with every node up but
// bodies short of R, the table's first line said "health: healthy"
// above a stderr line "cluster not healthy" and exit 1. The headline now
// names what is wrong too; --json keeps the nodes' health as it was.
func TestClusterStatusHeadlineAgreesWithItsExit(t *testing.T) {
	three := `[` + nodeJSON("n1", "leader") + `,` + nodeJSON("n2", "follower") + `,` + nodeJSON("n3", "follower") + `]`
	rec := &recorder{reply: `{"leader":"n1","health":"healthy","self":"n1","nodes":` + three + `,"redundancy":{"bodies":10,"under_replicated":3}}`}
	addr := rec.start(t)
	out, _, err := cli(t, "", "cluster", "status", "--addr", addr)
	head, _, _ := strings.Cut(out, "\n")
	if err == nil || strings.Contains(head, "health: healthy") || !strings.Contains(head, "under-replicated") {
		t.Errorf("bodies short of R: exit %v, headline %q", err, head)
	}
	healthy := &recorder{reply: `{"leader":"n1","health":"healthy","self":"n1","nodes":` + three + `,"redundancy":{"bodies":10}}`}
	addr = healthy.start(t)
	if out := mustCLI(t, "cluster", "status", "--addr", addr); !strings.HasPrefix(out, "leader: n1   health: healthy\n") {
		t.Errorf("healthy: %q", out)
	}
	if out, _, _ := cli(t, "", "cluster", "status", "--json", "--addr", rec.start(t)); !strings.Contains(out, `"health": "healthy"`) {
		t.Errorf("bodies short of R, --json: %q", out)
	}
}

// queuedSolo starts a one-node cluster whose outbound mail goes to a
// relay that refuses connections, and queues n messages to another
// provider through a forward; it returns the node and the queue's IDs.
func queuedSolo(t *testing.T, n int) (*proc, []string) {
	t.Helper()
	p := &proc{id: "solo", cluster: freeAddr(t), admin: freeAddr(t), data: t.TempDir()}
	p.start(t, append(p.smtpArgs(t), "--bootstrap", "--replicas", "1", "--relay-host", freeAddr(t))...)
	p.waitLeader(t, 30*time.Second)
	waitLog(t, p, `msg="node running"`)
	mustCLI(t, "domain", "add", "example.com", "--addr", p.admin)
	mustCLI(t, "forward", "add", "sales@example.com", "--to", "partner@elsewhere.test", "--addr", p.admin)
	c, err := smtp.Dial(p.smtp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range n {
		transact(t, c, "buyer@shop.test", []string{"sales@example.com"}, fmt.Sprintf("Subject: order %d\r\n\r\nhi\r\n", i))
	}
	var list []struct{ ID string }
	if err := json.Unmarshal([]byte(mustCLI(t, "queue", "ls", "--json", "--addr", p.admin)), &list); err != nil || len(list) != n {
		t.Fatalf("queue ls: %v %+v", err, list)
	}
	var ids []string
	for _, e := range list {
		ids = append(ids, e.ID)
	}
	return p, ids
}

// TestQueueTakesTheIDsItLists: queue show, retry and drop took only the
// whole 16-digit ID, leading zeros and all; an operator who typed the ID
// without them, or the start of it, got "not found". Each now takes any
// unambiguous prefix of the ID, with or without its leading zeros, and
// says which entries an ambiguous one matches.
func TestQueueTakesTheIDsItLists(t *testing.T) {
	p, ids := queuedSolo(t, 2)
	a, b := ids[0], ids[1]
	short := strings.TrimLeft(a, "0")
	// What queue ls prints, as it prints it.
	table := mustCLI(t, "queue", "ls", "--addr", p.admin)
	if !strings.Contains(table, a) || !strings.Contains(table, b) {
		t.Fatalf("queue ls does not show %s and %s:\n%s", a, b, table)
	}
	for _, arg := range []string{a, short, strings.ToUpper(short), "0" + short} {
		out := mustCLI(t, "queue", "show", arg, "--json", "--addr", p.admin)
		var e struct{ ID string }
		if json.Unmarshal([]byte(out), &e) != nil || e.ID != a {
			t.Errorf("queue show %s: %q", arg, out)
		}
	}
	// A prefix both share is ambiguous: the error names both.
	common := a[:len(a)-2]
	for !strings.HasPrefix(b, common) {
		common = common[:len(common)-1]
	}
	if _, errOut, err := cli(t, "", "queue", "show", common, "--addr", p.admin); err == nil ||
		!strings.Contains(errOut, "ambiguous") || !strings.Contains(errOut, a) || !strings.Contains(errOut, b) {
		t.Errorf("queue show %s: %v %q", common, err, errOut)
	}
	if _, errOut, err := cli(t, "", "queue", "show", "fffff", "--addr", p.admin); err == nil || !strings.Contains(errOut, `not found: no queue entry "fffff"`) {
		t.Errorf("queue show of no entry: %v %q", err, errOut)
	}
	if out := mustCLI(t, "queue", "retry", short, "--addr", p.admin); !strings.Contains(out, a) {
		t.Errorf("queue retry %s: %q", short, out)
	}
	if out := mustCLI(t, "queue", "drop", short, "--addr", p.admin); !strings.Contains(out, "dropped queue entry "+a) {
		t.Errorf("queue drop %s: %q", short, out)
	}
	if out := mustCLI(t, "queue", "ls", "--addr", p.admin); strings.Contains(out, a) || !strings.Contains(out, b) {
		t.Errorf("after dropping %s:\n%s", a, out)
	}
}

// TestStorageVerifyGivesUpOnASilentNode: storage verify had no time
// limit at all, so a node that took the request and then said nothing
// (paused, hung, its host swapping) kept a cron job waiting for ever,
// and the next night's run beside it. It now gives up when --timeout
// passes without a progress line, before the first or after any.
func TestStorageVerifyGivesUpOnASilentNode(t *testing.T) {
	progress := `{"done":1,"total":9,"short":0,"finished":false}` + "\n"
	for _, tc := range []struct {
		name string
		sent string // before the node falls silent
	}{
		{"no answer", ""},
		{"silent after a line", "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n" + progress},
	} {
		hold := make(chan struct{})
		ln := serveRaw(t, func(c net.Conn) {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(time.Second))
			c.Read(make([]byte, 4096)) // the request
			c.Write([]byte(tc.sent))
			<-hold
		})
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c := exec.CommandContext(ctx, binary, "storage", "verify", "--timeout", "2s", "--addr", ln.Addr().String())
		c.Env = append(os.Environ(), "POWERMAIL_TOKEN="+cliSecret)
		var errb strings.Builder
		c.Stderr = &errb
		err := c.Run()
		took := time.Since(start)
		cancel()
		close(hold)
		if code := exitCode(t, err); code != 1 || took > 15*time.Second || !strings.Contains(errb.String(), "no progress from") {
			t.Errorf("%s: exit %d after %v, stderr %q", tc.name, code, took.Round(time.Millisecond), errb.String())
		}
	}
}

// TestStorageVerifyDrawsNoBarIntoAPipe: the progress bar, a line
// rewritten with carriage returns, went to stderr also when that was a
// pipe or a file, and a cron job's mail held it as one long line of
// bars. It is drawn only on a terminal; the report on stdout is as
// before.
func TestStorageVerifyDrawsNoBarIntoAPipe(t *testing.T) {
	rec := &recorder{reply: `{"done":1,"total":2,"short":0,"finished":false}` + "\n" +
		`{"done":2,"total":2,"short":0,"finished":true}` + "\n"}
	addr := rec.start(t)
	out, errOut, err := cli(t, "", "storage", "verify", "--addr", addr)
	if err != nil || errOut != "" || !strings.Contains(out, "2 referenced bodies checked (every listed copy of each read back), 0 short") {
		t.Errorf("storage verify into pipes: %v stdout %q stderr %q", err, out, errOut)
	}
}

// TestMailboxImportCountsInJSON: with --json, mailbox import said only
// {"status":"ok"}: the counts the table line gives (created, and skipped
// with --skip-existing) were lost to a script.
func TestMailboxImportCountsInJSON(t *testing.T) {
	rec := &recorder{reply: `{"created":1,"skipped":1}`}
	addr := rec.start(t)
	csv := "a@example.com,$2a$10$abcdefghijklmnopqrstuuJ5wYl2GnDjzmlpAdpc.TlPzBa5bSDIe\n" +
		"b@example.com,$2a$10$abcdefghijklmnopqrstuuJ5wYl2GnDjzmlpAdpc.TlPzBa5bSDIe\n"
	for _, tc := range []struct {
		args             []string
		created, skipped float64
	}{
		{nil, 2, 0},
		{[]string{"--skip-existing"}, 1, 1},
	} {
		out, errOut, err := cli(t, csv, append([]string{"mailbox", "import", "-", "--json", "--addr", addr}, tc.args...)...)
		var res map[string]any
		if err != nil || json.Unmarshal([]byte(out), &res) != nil || res["status"] != "ok" || res["created"] != tc.created || res["skipped"] != tc.skipped {
			t.Errorf("import %v --json: %v %q %q", tc.args, err, out, errOut)
		}
	}
}

// TestTimeoutNamesReadsToo: a read that got no answer in time was
// explained as "a write waits for a quorum of voters", which sent the
// operator of a read-only monitoring check looking for a write; and the
// message did not say how long it had waited.
func TestTimeoutNamesReadsToo(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	ln := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		<-hold
	})
	_, errOut, err := cli(t, "", "domain", "ls", "--timeout", "1s", "--addr", ln.Addr().String())
	if err == nil || !strings.Contains(errOut, "within --timeout 1s") || strings.Contains(errOut, "a write waits") ||
		!strings.Contains(errOut, "reads and writes wait for a leader") {
		t.Errorf("domain ls at a silent node: %v %q", err, errOut)
	}
}

// runBounded runs the binary with args for at most 30 s and returns its
// exit status, stderr and how long it took.
func runBounded(t *testing.T, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, binary, args...)
	c.Env = append(os.Environ(), "POWERMAIL_TOKEN="+cliSecret)
	var errb strings.Builder
	c.Stderr = &errb
	start := time.Now()
	err := c.Run()
	return exitCode(t, err), errb.String(), time.Since(start)
}

// TestExportAndRestoreGiveUpOnASilentNode: mailbox export and restore
// waited up to seven days by default, so a nightly backup against a node
// that fell silent (paused, hung) hung for a week, with each night's run
// piling on. They now give up once nothing has moved for --timeout (10m
// unless given); a transfer that keeps moving has no limit as a whole.
func TestExportAndRestoreGiveUpOnASilentNode(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	// Export: the archive's first octets, then nothing.
	exp := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		c.Read(make([]byte, 4096))
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n" + strings.Repeat("\x00", 1024)))
		<-hold
	})
	out := filepath.Join(t.TempDir(), "box.tar")
	code, errOut, took := runBounded(t, "mailbox", "export", "a@example.com", "--out", out, "--timeout", "2s", "--addr", exp.Addr().String())
	if code != 1 || took > 15*time.Second || !strings.Contains(errOut, "nothing moved") {
		t.Errorf("export from a silent node: exit %d after %v, stderr %q", code, took.Round(time.Millisecond), errOut)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("an incomplete archive at --out: %v", err)
	}
	// Restore: the node takes the whole archive and never answers.
	res := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		io.Copy(io.Discard, c)
		<-hold
	})
	tarFile := filepath.Join(t.TempDir(), "in.tar")
	writeTar(t, tarFile, map[string]string{"Maildir/cur/1.x:2,S": "Subject: x\r\n\r\nhi\r\n"})
	code, errOut, took = runBounded(t, "mailbox", "restore", "a@example.com", tarFile, "--timeout", "2s", "--addr", res.Addr().String())
	if code != 1 || took > 15*time.Second || !strings.Contains(errOut, "nothing moved") {
		t.Errorf("restore to a silent node: exit %d after %v, stderr %q", code, took.Round(time.Millisecond), errOut)
	}
}

// TestExportKeepsGoingWhileDataMoves: export's --timeout bounds a wait
// for data, not the whole export, which takes hours for a large mailbox:
// one that keeps moving past --timeout completes.
func TestExportKeepsGoingWhileDataMoves(t *testing.T) {
	const chunks = 8
	exp := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(time.Second))
		c.Read(make([]byte, 4096))
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n"))
		for range chunks {
			time.Sleep(400 * time.Millisecond)
			c.Write([]byte(strings.Repeat("x", 512)))
		}
	})
	out := filepath.Join(t.TempDir(), "box.tar")
	code, errOut, took := runBounded(t, "mailbox", "export", "a@example.com", "--out", out, "--timeout", "1s", "--addr", exp.Addr().String())
	if fi, err := os.Stat(out); code != 0 || err != nil || fi.Size() != chunks*512 {
		t.Errorf("export that moved for %v with --timeout 1s: exit %d, stderr %q, file %v", took.Round(time.Millisecond), code, errOut, err)
	}
	// Without --timeout each waits streamIdleTimeout for data to move,
	// not days.
	for _, c := range [][]string{{"mailbox", "export", "a@example.com"}, {"mailbox", "restore", "a@example.com", "-"}} {
		cl := &clientFlags{}
		root := &cobra.Command{Use: "powermail"}
		cl.register(root)
		root.AddCommand(newMailboxCmd(cl))
		rec := &recorder{reply: `{"added":0}`}
		root.SetArgs(append(c, "--token", "t", "--addr", rec.start(t)))
		root.SetIn(strings.NewReader(""))
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		root.Execute()
		if cl.timeout != streamIdleTimeout || streamIdleTimeout > time.Hour {
			t.Errorf("%v waits %v for data by default", c, cl.timeout)
		}
	}
}

// TestForwardsToCutShortExitsNonZero: forward ls --target prints at most
// the node's largest page; a listing cut there warned on stderr and
// exited 0, so a script that acts on every forward naming an address
// (say, before mailbox rm) passed over the rest without failing.
func TestForwardsToCutShortExitsNonZero(t *testing.T) {
	items := make([]string, maxForwardsTo)
	for i := range items {
		items[i] = fmt.Sprintf(`{"address":"a%d@example.com","targets":["x@example.org"],"keep_copy":false}`, i)
	}
	rec := &recorder{reply: "[" + strings.Join(items, ",") + "]"}
	addr := rec.start(t)
	out, errOut, err := cli(t, "", "forward", "ls", "--target", "x@example.org", "--json", "--addr", addr)
	var list []map[string]any
	if exitCode(t, err) != 1 || json.Unmarshal([]byte(out), &list) != nil || len(list) != maxForwardsTo ||
		!strings.Contains(errOut, "only the first 10000") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("forward ls --target cut short: %v, %d listed, stderr %q", err, len(list), errOut)
	}
	rec.reply = "[" + strings.Join(items[:3], ",") + "]"
	if out := mustCLI(t, "forward", "ls", "--target", "x@example.org", "--addr", addr); strings.Count(out, "\n") != 4 {
		t.Errorf("forward ls --target of three:\n%s", out)
	}
}

// TestInterruptedSaysSo: a command stopped by SIGTERM (timeout(1) in a
// cron job, systemd stopping a unit) or ^C said "cannot reach ADDR:
// context canceled", blaming a node that was there; it now says it was
// interrupted, and that a change it had sent may have been made.
func TestInterruptedSaysSo(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	ln := serveRaw(t, func(c net.Conn) {
		defer c.Close()
		<-hold
	})
	c := exec.Command(binary, "domain", "add", "example.com", "--addr", ln.Addr().String())
	c.Env = append(os.Environ(), "POWERMAIL_TOKEN="+cliSecret)
	var errb strings.Builder
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	c.Process.Signal(syscall.SIGTERM)
	err := c.Wait()
	if exitCode(t, err) != 1 || !strings.Contains(errb.String(), "interrupted") || strings.Contains(errb.String(), "cannot reach") {
		t.Errorf("domain add stopped by SIGTERM: %v %q", err, errb.String())
	}
}

// TestMatchQueueID: the rules resolveQueueID looks IDs up by.
func TestMatchQueueID(t *testing.T) {
	ids := []string{"000000000000001c", "000000000000001f", "00000000000001c0", "0000000000000a00"}
	for _, tc := range []struct{ arg, want, err string }{
		{"1c", "000000000000001c", ""}, // equal but for the zeros, though 1c0 begins so too
		{"001C", "000000000000001c", ""},
		{"1f", "000000000000001f", ""},
		{"1c0", "00000000000001c0", ""},
		{"a", "0000000000000a00", ""},
		{"1", "", `ambiguous queue ID "1": it begins 3 entries' IDs (000000000000001c, 000000000000001f, 00000000000001c0)`},
		{"0000", "", "it begins 4 entries' IDs"},
		{"b", "", `not found: no queue entry "b"`},
	} {
		got, err := matchQueueID(ids, tc.arg, strings.ToLower(tc.arg))
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%q: %q, %v; want %q, %q", tc.arg, got, err, tc.want, tc.err)
		}
	}
}

// TestTimeoutFromTheEnvironmentIsADefault: POWERMAIL_TIMEOUT, set once in
// a profile or a cron job's environment for every command, counted as a
// --timeout given to each, so the commands that wait longer by default
// (cluster remove, mailbox rm, storage repair and gc: an hour) were cut
// off after it, mid-removal. It is now a default like the built-in one:
// those commands still wait their longer time, unless --timeout is
// given on the command line.
func TestTimeoutFromTheEnvironmentIsADefault(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(1500 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","bodies":0,"freed_bytes":0}`)
	}))
	defer slow.Close()
	run := func(env []string, args ...string) error {
		c := exec.Command(binary, append(args, "--addr", slow.URL)...)
		c.Env = append(append(os.Environ(), "POWERMAIL_TOKEN="+cliSecret), env...)
		out, err := c.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	for _, args := range [][]string{{"cluster", "remove", "n2"}, {"mailbox", "rm", "a@example.com"}, {"storage", "gc"}} {
		if err := run([]string{"POWERMAIL_TIMEOUT=500ms"}, args...); err != nil {
			t.Errorf("%v with POWERMAIL_TIMEOUT=500ms: %v", args, err)
		}
		if err := run(nil, append(args, "--timeout", "500ms")...); err == nil {
			t.Errorf("%v --timeout 500ms waited longer", args)
		}
	}
	// An ordinary command takes it as its timeout.
	if err := run([]string{"POWERMAIL_TIMEOUT=500ms"}, "settings", "show"); err == nil {
		t.Errorf("settings show waited past POWERMAIL_TIMEOUT")
	}
}
