package frontend_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestIMAPMultiAppendRefused: an APPEND whose message is followed by
// anything but the command's end (a second message, MULTIAPPEND, RFC
// 3502; neither it nor CATENATE, RFC 4469, is advertised) gets a prompt
// tagged BAD, stores nothing (a client told BAD assumes nothing was
// appended, and would store the first message twice on a retry), and
// the rest of the command, literals included, is read past: the
// session goes on. A message followed by its command's end is stored
// as before, in the UTF8 form too.
func TestIMAPMultiAppendRefused(t *testing.T) {
	addr, box := collectCluster(t)
	first := "X-Mark: first\r\nSubject: one\r\n\r\nbody\r\n"
	second := "X-Mark: second\r\nx DELETE Archive\r\n\r\nbody\r\n"
	for i, c := range []struct {
		name, cmd string
		stored    bool
	}{
		{"non-synchronizing MULTIAPPEND", "APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s\r\n", false},
		{"MULTIAPPEND with flags", "APPEND INBOX {%d+}\r\n%s (\\Seen) {%d+}\r\n%s\r\n", false},
		{"UTF8 MULTIAPPEND", "APPEND INBOX UTF8 (~{%d+}\r\n%s) UTF8 (~{%d+}\r\n%s)\r\n", false},
		{"CATENATE", "APPEND INBOX CATENATE (TEXT {%d+}\r\n%s TEXT {%d+}\r\n%s)\r\n", false},
		{"one message", "APPEND INBOX {%d+}\r\n%s\r\nX%d%s", true},
		{"one message, a space before CRLF", "APPEND INBOX {%d+}\r\n%s \r\nX%d%s", true},
		{"one UTF8 message", "APPEND INBOX UTF8 (~{%d+}\r\n%s)\r\nX%d%s", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := dialIMAPRaw(t, addr, box)
			r.cmd("CREATE Archive")
			mark := fmt.Sprintf("first%d", i)
			msg := strings.Replace(first, "first", mark, 1)
			cmd := fmt.Sprintf(c.cmd, len(msg), msg, len(second), second)
			cmd, _, _ = strings.Cut(cmd, "X"+fmt.Sprint(len(second))) // one message: no second
			r.send("a1 " + cmd)
			_, st := r.tagged("a1")
			if c.stored != strings.HasPrefix(st, "OK") {
				t.Fatalf("%q: %q", c.name, st)
			}
			if !c.stored && !strings.HasPrefix(st, "BAD") {
				t.Fatalf("%q: %q, want BAD", c.name, st)
			}
			r.ok("SELECT INBOX")
			u := r.ok("SEARCH HEADER X-Mark " + mark)
			if found := len(u) == 1 && u[0] != "* SEARCH"; found != c.stored {
				t.Fatalf("%q: stored %v (%q), want %v", c.name, found, u, c.stored)
			}
			r.want(`LIST "" Archive`, "* LIST", "Archive")
		})
	}
}

// TestIMAPMultiAppendSynchronizing: a second message announced as a
// synchronizing literal gets the tagged BAD instead of the "+" its
// client waits for, at once, not at the autologout; nothing is stored.
func TestIMAPMultiAppendSynchronizing(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	msg := "X-Mark: syncmulti\r\n\r\nbody\r\n"
	r.send(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(msg)))
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND's literal: %q, want +", l)
	}
	r.send(fmt.Sprintf("%s {%d}\r\n", msg, len(msg)))
	if l := r.line(); !strings.HasPrefix(l, "a1 BAD") {
		t.Fatalf("a second message: %q, want a1 BAD", l)
	}
	r.ok("SELECT INBOX")
	if u := r.ok("SEARCH HEADER X-Mark syncmulti"); len(u) != 1 || u[0] != "* SEARCH" {
		t.Fatalf("the first message was stored: %q", u)
	}
}
