package frontend_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestIMAPRefusedAppendMessageIsNotRun: an APPEND refused before its
// message is read (a mailbox name that is not modified UTF-7, a
// malformed date-time) whose message came as a non-synchronizing
// literal must not have the message's lines run as commands: the
// message is mail from anyone, and a header field "X-A: DELETE Archive"
// in it, read as tag and command, would delete the user's folder. The
// message is read past instead, and the session goes on.
func TestIMAPRefusedAppendMessageIsNotRun(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	r.ok("CREATE Archive")
	body := "X-A: DELETE Archive\r\nSubject: hello\r\n\r\nbody\r\n"
	for _, c := range []string{
		`APPEND "Tom & Jerry" {%d+}`,
		`APPEND INBOX "99-Foo-2000 00:00:00 +0000" {%d+}`,
		`APPEND {11+}` + "\r\n" + `Tom & Jerry (\Seen) {%d+}`,
		`APPEND INBOX (\Seen) "1-Foo-2000 00:00:00 +0000" UTF8 (~{%d+}`,
	} {
		end := "\r\n"
		if strings.Contains(c, "UTF8") {
			end = ")\r\n"
		}
		r.send(fmt.Sprintf("a1 "+c+"\r\n%s"+end, len(body), body))
		if _, st := r.tagged("a1"); strings.HasPrefix(st, "OK") {
			t.Fatalf("%s: %q, want a refusal", c, st)
		}
		if !strings.Contains(c, "{11+}") {
			// After a mailbox literal, the library ends the session
			// at the rest of the line, which it does not discard.
			r.ok("NOOP")
		}
		r = dialIMAPRaw(t, addr, box)
		r.want(`LIST "" Archive`, "* LIST", "Archive")
	}
}

// TestIMAPHeldAppendMessageStored: a non-synchronizing APPEND the
// library accepts gets its message whole, pipelined commands behind it
// run, and the client never sees the library's "+" for it.
func TestIMAPHeldAppendMessageStored(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	r.ok("SELECT INBOX")
	body := "X-A: DELETE Archive\r\nSubject: kept\r\n\r\nbody\r\n"
	r.send(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s\r\na2 APPEND {5+}\r\nINBOX {0+}\r\n\r\na3 NOOP\r\n", len(body), body))
	for _, tag := range []string{"a1", "a2", "a3"} {
		u, st := r.tagged(tag)
		for _, l := range u {
			if strings.HasPrefix(l, "+") {
				t.Fatalf("%s: the client got %q", tag, l)
			}
		}
		if tag != "a2" && !strings.HasPrefix(st, "OK") { // an empty message is the store's to judge
			t.Fatalf("%s: %q", tag, st)
		}
	}
	u := r.ok("SEARCH HEADER X-A DELETE")
	if len(u) != 1 || u[0] == "* SEARCH" {
		t.Fatalf("the APPENDed message: %q", u)
	}
}
