package frontend_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
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

// TestIMAPMultiAppendEmptyFirst: a first message of length 0 (which
// has no last octet to hold back) followed by a second one is refused
// too, synchronizing or not, and stores nothing; an empty message alone
// is the store's to judge, as before.
func TestIMAPMultiAppendEmptyFirst(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	before := imapExists(t, r)
	second := "x DELETE Archive\r\n"
	r.ok("CREATE Archive")
	r.send(fmt.Sprintf("a1 APPEND INBOX {0+}\r\n {%d+}\r\n%s\r\n", len(second), second))
	if _, st := r.tagged("a1"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("an empty message and a second: %q, want BAD", st)
	}
	r.send("a2 APPEND INBOX {0}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND {0}: %q, want +", l)
	}
	r.send(fmt.Sprintf(" {%d}\r\n", len(second)))
	if _, st := r.tagged("a2"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("an empty synchronizing message and a second: %q, want BAD", st)
	}
	if after := imapExists(t, r); after != before {
		t.Fatalf("%d messages, %d before: something was stored", after, before)
	}
	r.want(`LIST "" Archive`, "* LIST", "Archive")
	r.send("a3 APPEND INBOX {0+}\r\n\r\n")
	r.tagged("a3") // the store's to judge
	r.ok("NOOP")
}

// imapExists returns the selected folder's message count, from a NOOP
// after a fresh SELECT.
func imapExists(t *testing.T, r *imapRaw) int {
	t.Helper()
	for _, l := range r.ok("SELECT INBOX") {
		var n int
		if _, err := fmt.Sscanf(l, "* %d EXISTS", &n); err == nil {
			return n
		}
	}
	t.Fatal("no EXISTS after SELECT")
	return 0
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

// TestIMAPEmptyAppendCutOffStoresNothing: an APPEND of an empty message
// whose client hangs up before the command's end stores nothing, as one
// cut off inside its message does (TestIMAPAppendCutOffStoresNothing):
// the command never completed, and its client never had an answer.
func TestIMAPEmptyAppendCutOffStoresNothing(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, user)
	r.send("a1 APPEND INBOX {0+}\r\n")
	time.Sleep(50 * time.Millisecond)
	r.c.Close()

	check := dialIMAPRaw(t, addr, user)
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		if u := check.ok("STATUS INBOX (MESSAGES)"); len(u) != 1 || u[0] != "* STATUS INBOX (MESSAGES 0)" {
			t.Fatalf("after an empty APPEND cut off before its end: %q, want no message", u)
		}
	}
}
