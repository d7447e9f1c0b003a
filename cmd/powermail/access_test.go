package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests read mail the way users do: Python's imaplib and poplib
// against the real binary, three processes, mail delivered over SMTP.

// python runs a Python 3 script with args and returns its stdout; the
// test fails if the script fails.
func python(t *testing.T, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("python3", append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	return string(out)
}

const imapFetch = `
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
assert "ID" in m.capabilities, m.capabilities  # RFC 2971
typ, data = m.xatom("ID", '("name" "imaplib")')
assert typ == "OK" and b'"PowerMail"' in m.untagged_responses.pop("ID")[0], (typ, data)
m.login(sys.argv[2], sys.argv[3])
typ, data = m.select("INBOX")
assert typ == "OK", data
typ, data = m.uid("SEARCH", None, "ALL")
uids = data[0].split()
for uid in uids:
    typ, msg = m.uid("FETCH", uid, "(FLAGS BODY.PEEK[])")
    assert typ == "OK", msg
    print("UID", uid.decode(), msg[0][0].decode())
    sys.stdout.write(msg[0][1].decode())
m.logout()
`

func TestIMAPReadOnAnotherNode(t *testing.T) {
	ps := startMailCluster(t)
	body := "Subject: across\r\nMessage-ID: <x1@test>\r\n\r\nDelivered on node 1.\r\n"
	if code, msg := send(t, ps[0].smtp, "s@elsewhere.net", []string{"alice@example.com"}, body); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	out := python(t, imapFetch, ps[2].imap, "alice@example.com", "pw-alice")
	if !strings.Contains(out, "Delivered on node 1.") || !strings.Contains(out, "Received:") {
		t.Fatalf("node 3 IMAP:\n%s", out)
	}

	// Flags set on node 2 are seen on node 1.
	python(t, `
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
m.login("alice@example.com", "pw-alice")
m.select("INBOX")
typ, data = m.store("1", "+FLAGS", r"(\Flagged $Work)")
assert typ == "OK", data
m.logout()
`, ps[1].imap)
	out = python(t, imapFetch, ps[0].imap, "alice@example.com", "pw-alice")
	if !strings.Contains(out, `\Flagged`) || !strings.Contains(out, "$Work") {
		t.Fatalf("node 1 does not see flags set on node 2:\n%s", out)
	}

	// Bob sees none of Alice's mail, whatever he names.
	out = python(t, `
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
m.login("bob@example.com", "pw-bob")
for name in ["alice@example.com", "alice@example.com/INBOX", "../alice@example.com/INBOX", "#shared/alice"]:
    typ, data = m.select('"%s"' % name)
    print(name, typ)
typ, data = m.select("INBOX")
print("INBOX", typ, data)
m.logout()
`, ps[2].imap)
	if strings.Contains(out, "alice@example.com OK") || strings.Contains(out, "INBOX OK") && !strings.Contains(out, "INBOX OK [b'0']") {
		t.Fatalf("bob reached alice's mail:\n%s", out)
	}
}

const imapIdle = `
import imaplib, sys, time
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
m.login("carol@example.com", "pw-carol")
m.select("INBOX")
m.send(b"i1 IDLE\r\n")
line = m.readline()
assert line.startswith(b"+"), line
print("IDLING", flush=True)
m.sock.settimeout(10)
while True:
    line = m.readline()
    if b"EXISTS" in line:
        print("GOT", line.decode().strip(), flush=True)
        break
m.send(b"DONE\r\n")
`

func TestIMAPIdleSeesDeliveryOnAnotherNode(t *testing.T) {
	ps := startMailCluster(t)
	cmd := exec.Command("python3", "-c", imapIdle, ps[2].imap)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "IDLING" {
		t.Fatalf("IDLE did not start: %q", lines.Text())
	}
	if code, msg := send(t, ps[0].smtp, "s@elsewhere.net", []string{"carol@example.com"}, "Subject: idle\r\n\r\nwake up\r\n"); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	acked := time.Now()
	got := make(chan string, 1)
	go func() {
		lines.Scan()
		got <- lines.Text()
	}()
	select {
	case line := <-got:
		if !strings.HasPrefix(line, "GOT * 1 EXISTS") {
			t.Fatalf("IDLE on node 3 reported %q", line)
		}
		t.Logf("EXISTS on node 3 %v after node 1 acknowledged", time.Since(acked))
	case <-time.After(time.Second):
		t.Fatal("no EXISTS on node 3 within 1 s of the delivery on node 1")
	}
}

// replicasOf returns the node IDs holding the body of mailbox's message.
func replicasOf(t *testing.T, adminAddr, mailbox string) (string, []string) {
	t.Helper()
	msgs := messages(t, adminAddr, mailbox)
	if len(msgs) != 1 {
		t.Fatalf("%s has %d messages", mailbox, len(msgs))
	}
	var body struct {
		Replicas []string `json:"replicas"`
	}
	if code := admin(t, adminAddr, "/v1/bodies/"+msgs[0].Hash, &body); code != 200 {
		t.Fatalf("body record: HTTP %d", code)
	}
	return msgs[0].Hash, body.Replicas
}

func TestIMAPReadsTheOtherReplicaWhenOneDies(t *testing.T) {
	ps := startMailCluster(t)
	body := "Subject: replicas\r\n\r\n" + strings.Repeat("replicated line\r\n", 2000)
	if code, msg := send(t, ps[1].smtp, "s@elsewhere.net", []string{"bob@example.com"}, body); code != 250 {
		t.Fatalf("send: %d %s", code, msg)
	}
	_, replicas := replicasOf(t, ps[0].admin, "bob@example.com")
	if len(replicas) != 2 {
		t.Fatalf("replicas %v", replicas)
	}
	// Read through a node without a replica after killing one replica
	// holder (never the reader itself): the other replica serves it.
	var reader, victim *proc
	for _, p := range ps {
		if !contains(replicas, p.id) {
			reader = p
		}
	}
	for _, p := range ps {
		if p != reader {
			victim = p
			break
		}
	}
	if reader == nil {
		t.Fatalf("every node holds a replica: %v", replicas)
	}
	victim.stop(syscall.SIGKILL)
	waitStatus(t, reader.admin, 15*time.Second, func(s statusJSON) bool { return s.Leader != "" && s.Leader != victim.id })
	out := python(t, imapFetch, reader.imap, "bob@example.com", "pw-bob")
	if strings.Count(out, "replicated line") != 2000 {
		t.Fatalf("read through %s after %s died: %d lines", reader.id, victim.id, strings.Count(out, "replicated line"))
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

const popDelete = `
import poplib, sys
host, port = sys.argv[1].rsplit(":", 1)
p = poplib.POP3(host, int(port))
p.user(sys.argv[2]); p.pass_(sys.argv[3])
count, size = p.stat()
uidl = [l.decode() for l in p.uidl()[1]]
print("STAT", count, size)
print("UIDL", " ".join(u.split()[1] for u in uidl))
for i in range(1, count + 1):
    lines = p.retr(i)[1]
    print("RETR", i, len(lines), lines[0].decode())
if len(sys.argv) > 4:
    p.dele(int(sys.argv[4]))
p.quit()
`

func TestPOP3DeletionSurvivesLeaderChange(t *testing.T) {
	ps := startMailCluster(t)
	for i := 1; i <= 3; i++ {
		if code, msg := send(t, ps[i-1].smtp, "s@elsewhere.net", []string{"alice@example.com"}, fmt.Sprintf("Subject: pop %d\r\n\r\n.dot-stuffed line %d\r\n", i, i)); code != 250 {
			t.Fatalf("send: %d %s", code, msg)
		}
	}
	first := python(t, popDelete, ps[2].pop3, "alice@example.com", "pw-alice", "2")
	if !strings.Contains(first, "STAT 3") {
		t.Fatalf("POP3 on node 3:\n%s", first)
	}
	uidl := line(first, "UIDL")
	// The leader goes; the deletion committed at QUIT must survive.
	st, err := status(t, ps[0].admin)
	if err != nil {
		t.Fatal(err)
	}
	var rest []*proc
	for _, p := range ps {
		if p.id == st.Leader {
			p.stop(syscall.SIGKILL)
		} else {
			rest = append(rest, p)
		}
	}
	waitStatus(t, rest[0].admin, 15*time.Second, func(s statusJSON) bool { return s.Leader != "" && s.Leader != st.Leader })
	for _, p := range rest {
		out := python(t, popDelete, p.pop3, "alice@example.com", "pw-alice")
		if !strings.Contains(out, "STAT 2") {
			t.Fatalf("after the leader died, POP3 on %s:\n%s", p.id, out)
		}
		want := strings.Fields(uidl)
		got := strings.Fields(line(out, "UIDL"))
		if len(got) != 2 || got[0] != want[0] || got[1] != want[2] {
			t.Fatalf("UIDLs on %s are %v, were %v before deleting the second", p.id, got, want)
		}
	}
}

func line(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix+" ") {
			return strings.TrimPrefix(l, prefix+" ")
		}
	}
	return ""
}
