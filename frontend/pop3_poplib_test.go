package frontend_test

import (
	"bufio"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"powermail/node/nodetest"
)

// pop3PoplibScript drives Python's poplib through a maildrop of three
// messages (dot lines, an empty body, a long body) and checks what a
// client relies on: the octets RETR delivers (poplib counts them with
// CRLF, without the stuffing) equal LIST's and STAT's; TOP 0 is the
// header section and the empty line, TOP with a huge count the whole
// message; RSET undoes DELE; mail that arrives during the session is
// not in it; UIDL is the same in the next session; DELE is committed by
// QUIT only.
const pop3PoplibScript = `
import poplib, sys, time
host, port, box = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def session():
    p = poplib.POP3(host, port, timeout=20)
    caps = p.capa()
    for c in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING"):
        assert c in caps, caps
    p.user(box)
    p.pass_("pw")
    return p

p = session()
count, total = p.stat()
assert count == 3, count
sizes = {int(n): int(s) for n, s in (l.split() for l in p.list()[1])}
assert sum(sizes.values()) == total, (sizes, total)
for n in range(1, count + 1):
    resp, lines, octets = p.retr(n)
    assert octets == sizes[n], (n, octets, sizes[n])
    assert resp == b"+OK %d octets" % sizes[n], resp
    assert int(p.list(n).split()[2]) == octets
    resp, top, _ = p.top(n, 0)
    assert top == lines[:lines.index(b"") + 1], (n, top)
    resp, top, octets2 = p.top(n, 4294967295)
    assert top == lines and octets2 == octets, n
first = p.retr(1)[1]
assert first[4:7] == [b".leading", b"..two", b"."], first
uidl = p.uidl()[1]
print("deliver", flush=True)
sys.stdin.readline()
assert p.stat() == (3, total), p.stat()
assert p.uidl()[1] == uidl
p.dele(1); p.dele(2)
assert p.stat() == (1, sizes[3])
try:
    p.retr(1)
    raise SystemExit("RETR of a deleted message succeeded")
except poplib.error_proto as e:
    assert e.args[0].startswith(b"-ERR"), e
p.rset()
assert p.stat() == (3, total)
p.dele(2)
p.quit()

p = session()
after = p.uidl()[1]
ids = [l.split()[1] for l in after]
assert ids[0] == uidl[0].split()[1] and ids[1] == uidl[2].split()[1], (after, uidl)
assert len(ids) == 3, after
p.dele(3)
p.close()  # no QUIT: nothing is removed

p = None
for _ in range(100):
    try:
        p = session()
        break
    except poplib.error_proto as e:
        assert b"[IN-USE]" in e.args[0], e
        time.sleep(0.05)
assert p is not None, "still locked after the dropped session"
assert len(p.uidl()[1]) == 3
p.quit()
print("ok")
`

// TestPOP3Poplib runs pop3PoplibScript against a real node.
func TestPOP3Poplib(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	c := nodetest.Start(t, 1)
	const box = "poplib@example.com"
	c.AddMailboxes("pw", box)
	c.Deliver(0, "From: a@example.net\r\nSubject: dots\r\n\r\nline\r\n.leading\r\n..two\r\n.\r\nend\r\n", box)
	c.Deliver(0, "Subject: empty body\r\n\r\n", box)
	c.Deliver(0, "Subject: long\r\n\r\n"+strings.Repeat("y", 998)+"\r\n"+strings.Repeat("z\r\n", 3000), box)
	_, addr := pop3Serve(t, c.Nodes[0], pop3TestAuth(c.Nodes[0], true), pop3TestConfig(), false)
	host, port, _ := strings.Cut(addr, ":")

	cmd := exec.Command("python3", "-c", pop3PoplibScript, host, port, box)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var said []string
	for lines.Scan() {
		said = append(said, lines.Text())
		if lines.Text() == "deliver" {
			c.Deliver(0, "Subject: during\r\n\r\narrived during the session\r\n", box)
			if _, err := stdin.Write([]byte("\n")); err != nil {
				t.Errorf("to the script: %v", err)
			}
		}
	}
	err = cmd.Wait()
	if err != nil || !slices.Equal(said, []string{"deliver", "ok"}) {
		t.Fatalf("poplib: %v\n%s\n%s", err, strings.Join(said, "\n"), stderr.String())
	}
}
