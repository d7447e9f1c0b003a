package frontend_test

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestIMAPRefusedCommandLiteralIsNotRun: a command that the library
// refuses before it reads its non-synchronizing literal (an unknown
// command, a known one with an argument it does not take, a bad
// argument before the literal, SEARCH with a charset it refuses) must
// not have the literal's octets read as commands: a literal may carry a
// message's text (mail from anyone), and a line "x DELETE Archive" in it
// would delete the user's folder. The octets are read past, with any
// further literal the refused command announces, and the session goes
// on.
func TestIMAPRefusedCommandLiteralIsNotRun(t *testing.T) {
	addr, box := collectCluster(t)
	lit := "x DELETE Archive\r\n"
	for _, c := range []struct {
		name, cmd string
		login     bool // whether the command is sent after LOGIN
	}{
		{"unknown command", "XFOO {%d+}", true},
		{"unknown UID command", "UID XFOO {%d+}", true},
		{"argument to NOOP", "NOOP {%d+}", true},
		{"argument to NOOP before login", "NOOP {%d+}", false},
		// The library reads SELECT's mailbox before it checks the
		// state (the literal, CRLF and all, is the name it refuses),
		// so this one guards against a wire layer that drops it.
		{"wrong state: SELECT before login", "SELECT {%d+}", false},
		{"wrong state: SELECT's literal, then more", "SELECT {%d+}\r\n" + lit + " {%d+}", false},
		{"bad argument: ENABLE with a literal", "ENABLE {%d+}", true},
		{"bad mailbox before the literal", `RENAME "Tom & Jerry" {%d+}`, true},
		{"bad sequence set before the literal", "FETCH 0 (BODY[HEADER.FIELDS ({%d+}", true},
		{"SEARCH CHARSET refused", "SEARCH CHARSET KOI8-R SUBJECT {%d+}", true},
		{"a second literal after the first", "XFOO {%d+}\r\n" + lit + " {%d+}", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dialIMAPRaw(t, addr, box)
			r.cmd("CREATE Archive") // a case before may have left it
			r.ok("SELECT INBOX")
			if !c.login {
				r = dialIMAPRaw(t, addr, "")
			}
			cmd := strings.ReplaceAll(c.cmd, "%d", fmt.Sprint(len(lit)))
			r.send("a1 " + cmd + "\r\n" + lit + "\r\n")
			if _, st := r.tagged("a1"); strings.HasPrefix(st, "OK") {
				t.Fatalf("%q: %q, want a refusal", cmd, st)
			}
			if !strings.HasPrefix(cmd, "SELECT") {
				// After a literal it has read and refused, the
				// library reads the rest of the line as a command
				// and ends the session itself.
				if u, st := r.cmd("NOOP"); !strings.HasPrefix(st, "OK") {
					t.Fatalf("after %q: NOOP got %q %q", cmd, u, st)
				}
			}
			r = dialIMAPRaw(t, addr, box)
			r.want(`LIST "" Archive`, "* LIST", "Archive")
		})
	}
}

// TestIMAPRefusedCommandLiteralBounded: what a refused command's
// literals still bring is read past up to 64 KiB; past that the
// session ends with a BYE, and nothing of it runs.
func TestIMAPRefusedCommandLiteralBounded(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	r.ok("CREATE Archive")
	lit := strings.Repeat("x DELETE Archive\r\n", 4000) // 72,000 octets
	r.send(fmt.Sprintf("a1 XFOO {%d+}\r\n%s\r\n", len(lit), lit))
	if _, st := r.tagged("a1"); strings.HasPrefix(st, "OK") {
		t.Fatalf("XFOO: %q, want a refusal", st)
	}
	if l := r.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("after 72,000 octets of a refused literal: %q, want BYE", l)
	}
	r.closed()
	r = dialIMAPRaw(t, addr, box)
	r.want(`LIST "" Archive`, "* LIST", "Archive")
}

// TestIMAPTakenLiteralsPassUnseen: non-synchronizing literals that the
// library takes (LOGIN's, SELECT's, SEARCH's, several in one command,
// commands pipelined behind them) reach it whole, and the client never
// sees the "+" the library sends for each.
func TestIMAPTakenLiteralsPassUnseen(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, "")
	pass := imapPassword
	r.send(fmt.Sprintf("a1 LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\na2 SELECT {5+}\r\nINBOX\r\n"+
		"a3 SEARCH SUBJECT {5+}\r\nquota FROM {1+}\r\n@\r\na4 NOOP\r\n", len(box), box, len(pass), pass))
	for _, tag := range []string{"a1", "a2", "a3", "a4"} {
		u, st := r.tagged(tag)
		for _, l := range u {
			if strings.HasPrefix(l, "+") {
				t.Fatalf("%s: the client got %q", tag, l)
			}
		}
		if !strings.HasPrefix(st, "OK") {
			t.Fatalf("%s: %q", tag, st)
		}
		if tag == "a3" && (len(u) != 1 || u[0] == "* SEARCH") {
			t.Fatalf("SEARCH with literals: %q", u)
		}
	}
}

// TestIMAPRefusedLongLineLiteralSplit: a refused command's line too long
// to hold (over 8 KiB) whose literal's announcement arrives in two reads,
// "{18+" then "}", still has its literal read past: the start of the
// announcement waits for its end.
func TestIMAPRefusedLongLineLiteralSplit(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	r.ok("CREATE Archive")
	lit := "x DELETE Archive\r\n"
	r.send(fmt.Sprintf("a1 XFOO %s {%d+", strings.Repeat("y", 9000), len(lit)))
	time.Sleep(200 * time.Millisecond) // a read of its own
	r.send("}\r\n" + lit + "\r\n")
	if _, st := r.tagged("a1"); strings.HasPrefix(st, "OK") {
		t.Fatalf("XFOO: %q, want a refusal", st)
	}
	r.ok("NOOP")
	r.want(`LIST "" Archive`, "* LIST", "Archive")
}
