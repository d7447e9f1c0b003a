package frontend_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// Valid client input at the edges of what the wire layer under go-imap
// follows (imap_wire.go): empty literals, literals of exactly the
// library's 4 KiB, literal-looking text that is none, IDLE's DONE with
// commands pipelined behind it, and input split at every octet.

// TestIMAPWireEdgeLiterals: each command is answered, and the session
// goes on.
func TestIMAPWireEdgeLiterals(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, "")
	r.send("a1 LOGIN {0}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("LOGIN {0}: %q, want +", l)
	}
	r.send(" {0+}\r\n\r\n")
	if _, st := r.tagged("a1"); !strings.HasPrefix(st, "NO") {
		t.Fatalf("LOGIN of empty literals: %q, want NO", st)
	}
	r.ok(fmt.Sprintf("LOGIN %q %q", box, imapPassword))
	r.ok("SELECT INBOX")

	exact := strings.Repeat("x", 4096)
	for _, c := range []struct{ send, tag, want string }{
		{"b2 SEARCH TEXT {4096+}\r\n" + exact + "\r\n", "b2", "OK"},
		{"b3 LIST {0+}\r\n {4096+}\r\n" + exact + "\r\n", "b3", "OK"},
		{"b4 SEARCH TEXT {4097+}\r\n" + exact + "y\r\n", "b4", "NO [TOOBIG]"},
		{"b5 SEARCH SUBJECT \"{5}\"\r\n", "b5", "OK"},
		{"b6 SEARCH TEXT \"x {5000}\"\r\n", "b6", "OK"},
		{"b1 SELECT {0+}\r\n\r\n", "b1", "NO"}, // an empty name; unselects
		{"b7 SELECT INBOX\r\n", "b7", "OK"},
	} {
		r.send(c.send)
		if _, st := r.tagged(c.tag); !strings.HasPrefix(st, c.want) {
			t.Fatalf("%q: %q, want %s", c.send[:min(len(c.send), 40)], st, c.want)
		}
	}
	r.send("b8 APPEND INBOX {0}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND {0}: %q, want +", l)
	}
	r.send("\r\n")
	r.tagged("b8") // OK or NO: an empty message is the store's to judge
	r.ok("NOOP")

	// IDLE, then DONE with commands behind it in the same write.
	r.send("i1 IDLE\r\n")
	r.until("+")
	r.send("done\r\nc1 ID NIL\r\nc2 NOOP\r\n")
	for _, tag := range []string{"i1", "c1", "c2"} {
		if _, st := r.tagged(tag); !strings.HasPrefix(st, "OK") {
			t.Fatalf("%s after IDLE's done: %q", tag, st)
		}
	}

	// A script sent one octet per write.
	msg := imapTestMsg("octets", "a {5}\r\nb ID NIL\r\n")
	script := "e1 ID NIL\r\ne2 SEARCH TEXT {3+}\r\nabc\r\ne3 IDLE\r\nDone\r\n" +
		fmt.Sprintf("e4 APPEND INBOX {%d+}\r\n%s\r\ne5 GETQUOTAROOT INBOX\r\ne6 NOOP\r\n", len(msg), msg)
	for i := range len(script) {
		r.send(script[i : i+1])
		if i%64 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for _, tag := range []string{"e1", "e2", "e3", "e4", "e5", "e6"} {
		if _, st := r.tagged(tag); !strings.HasPrefix(st, "OK") {
			t.Fatalf("%s, sent an octet at a time: %q", tag, st)
		}
	}
	u := r.ok("FETCH * (RFC822.SIZE)")
	if len(u) != 1 || !strings.Contains(u[0], fmt.Sprintf("RFC822.SIZE %d", len(msg))) {
		t.Fatalf("the message sent an octet at a time: %q, want RFC822.SIZE %d", u, len(msg))
	}
}

// TestIMAPWireImaplib: Python's imaplib APPENDs (synchronizing
// literals) a message whose lines look like commands and literal
// announcements, and reads it back octet for octet.
func TestIMAPWireImaplib(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	addr, box := collectCluster(t)
	script := `
import imaplib, sys
host, port = sys.argv[1].rsplit(":", 1)
m = imaplib.IMAP4(host, int(port))
typ, data = m.xatom("ID", '("name" "imaplib")')
assert typ == "OK", (typ, data)
m.login(sys.argv[2], sys.argv[3])
m.select("INBOX")
msg = b"Subject: wire\r\n\r\nx1 ID NIL\r\nx2 STARTTLS\r\nx3 LOGIN {5000}\r\nDONE\r\nx4 GETQUOTAROOT {9+}\r\n" + b"y" * 5000 + b"\r\n"
typ, data = m.append("INBOX", None, None, msg)
assert typ == "OK", (typ, data)
typ, data = m.search(None, "SUBJECT", "wire")
n = data[0].split()[-1]
typ, data = m.fetch(n, "(BODY.PEEK[])")
assert typ == "OK", (typ, data)
assert data[0][1] == msg, data[0][1][:200]
m.logout()
print("ok")
`
	out, err := exec.Command("python3", "-c", script, addr, box, imapPassword).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

// TestIMAPWireImapclient: go-imap's client, which sends 8-bit and long
// strings as literals (non-synchronizing: LITERAL+ is advertised), gets
// answers through the wire layer: a SEARCH string with 8-bit octets and
// one of exactly 4096 octets are searched, one over 4096 is refused
// with TOOBIG rather than left hanging, an APPEND whose lines look like
// commands is stored whole, and IDLE ends when the client stops it.
func TestIMAPWireImapclient(t *testing.T) {
	addr, box := collectCluster(t)
	c := dialIMAPAnon(t, addr)
	if err := c.Login(box, imapPassword).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msg := imapTestMsg("lookalike", "x1 ID NIL\r\nx2 LOGIN {5000}\r\ndone\r\n"+strings.Repeat("z", 6000))
	app := c.Append("INBOX", int64(len(msg)), nil)
	if _, err := app.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Wait(); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	for _, s := range []string{"grüße", strings.Repeat("z", 4096)} {
		if _, err := c.Search(&imap.SearchCriteria{Body: []string{s}}, nil).Wait(); err != nil {
			t.Fatalf("SEARCH BODY of %d octets: %v", len(s), err)
		}
	}
	_, err := c.Search(&imap.SearchCriteria{Body: []string{strings.Repeat("z", 4097)}}, nil).Wait()
	wantIMAPCode(t, "SEARCH BODY of 4097 octets", err, imap.ResponseCodeTooBig)

	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE: %v", err)
	}
	data, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{RFC822Size: true}).Collect()
	if err != nil || len(data) != 1 {
		t.Fatalf("FETCH after IDLE: %v %v", data, err)
	}
}
