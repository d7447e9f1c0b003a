package frontend_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// Client input that go-imap's server mishandles, answered properly by
// the layers around it (imap_wire.go, imap_conn.go), against a real
// one-node cluster.

// TestIMAPBigLiteralAnswered: a literal over the library's 4 KiB limit
// in a command other than APPEND's message gets a prompt tagged NO
// [TOOBIG] (synchronizing: instead of "+"; non-synchronizing: after its
// octets were read past), or, when the command is already with the
// library, a BYE; never a hang.
func TestIMAPBigLiteralAnswered(t *testing.T) {
	addr, box := collectCluster(t)
	big := strings.Repeat("x", 5000)

	// Before login, synchronizing.
	r := dialIMAPRaw(t, addr, "")
	r.send("a1 LOGIN {5000}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "a1 NO [TOOBIG]") {
		t.Fatalf("LOGIN with a 5000-octet literal: %q, want NO [TOOBIG]", l)
	}
	r.ok(fmt.Sprintf("LOGIN %q %q", box, imapPassword))

	// After login: synchronizing, in several commands.
	for _, c := range []string{"CREATE {5000}", "SELECT {5000}", "APPEND {5000}", "SEARCH TEXT {5000}",
		"STATUS {5000}", "LIST \"\" {5000}"} {
		r.send("b1 " + c + "\r\n")
		if l := r.line(); !strings.HasPrefix(l, "b1 NO [TOOBIG]") {
			t.Fatalf("%s: %q, want NO [TOOBIG]", c, l)
		}
		r.ok("NOOP")
	}

	// Non-synchronizing: its octets are read past, the rest of the
	// command with them, and the next command is one again.
	r.send(fmt.Sprintf("c1 RENAME {5000+}\r\n%s other\r\nc2 NOOP\r\n", big))
	if _, st := r.tagged("c1"); !strings.HasPrefix(st, "NO [TOOBIG]") {
		t.Fatalf("RENAME with a non-synchronizing 5000-octet literal: %q", st)
	}
	if _, st := r.tagged("c2"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("NOOP after it: %q", st)
	}

	// At the limit, and APPEND's message over it, still work.
	r.ok("SELECT INBOX")
	r.send(fmt.Sprintf("d1 SEARCH TEXT {4096}\r\n"))
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("SEARCH with a 4096-octet literal: %q, want +", l)
	}
	r.send(strings.Repeat("y", 4096) + "\r\n")
	if _, st := r.tagged("d1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("SEARCH with a 4096-octet literal: %q", st)
	}
	msg := "Subject: big\r\n\r\n" + big + "\r\n"
	r.send(fmt.Sprintf("d2 APPEND INBOX {%d}\r\n", len(msg)))
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND of %d octets: %q, want +", len(msg), l)
	}
	r.send(msg + "\r\n")
	if _, st := r.tagged("d2"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND of %d octets: %q", len(msg), st)
	}

	// After a first literal the command is the library's: a second one
	// too big ends the session with a BYE.
	r.send("e1 RENAME {3}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("RENAME {3}: %q, want +", l)
	}
	r.send("abc {5000}\r\n")
	if l := r.until("* BYE"); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("a second literal of 5000 octets: %q", l)
	}
	r.closed()

	// Pipelined: the commands before it are answered first.
	r = dialIMAPRaw(t, addr, box)
	r.send(fmt.Sprintf("f1 RENAME {5000+}\r\n%s x\r\nf2 RENAME {1+}\r\na {5000+}\r\n%s\r\n", big, big))
	if _, st := r.tagged("f1"); !strings.HasPrefix(st, "NO [TOOBIG]") {
		t.Fatalf("RENAME with a non-synchronizing 5000-octet literal: %q", st)
	}
	if l := r.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("a second literal of 5000 octets, pipelined: %q", l)
	}
	r.closed()
}

// TestIMAPClientErrorsAreNotServerBugs: what the library's parser refuses
// with a plain error, which it answers NO [SERVERBUG], is the client's
// doing and is answered as such.
func TestIMAPClientErrorsAreNotServerBugs(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, "")
	b64 := base64.StdEncoding.EncodeToString
	for _, c := range []struct{ cmd, want string }{
		{"AUTHENTICATE PLAIN =", "BAD"},
		{"AUTHENTICATE PLAIN !!!!", "BAD"},
		{"AUTHENTICATE PLAIN " + b64([]byte(box+"\x00"+imapPassword)), "BAD"},
	} {
		if _, st := r.cmd(c.cmd); !strings.HasPrefix(st, c.want) || strings.Contains(st, "SERVERBUG") {
			t.Errorf("%s: %q, want %s", c.cmd, st, c.want)
		}
	}
	r.ok("AUTHENTICATE PLAIN " + b64([]byte("\x00"+box+"\x00"+imapPassword)))
	for _, c := range []struct{ cmd, want string }{
		{`CREATE "Tom & Jerry"`, "NO [CANNOT]"},
		{"CREATE \"Tom\x01Jerry\"", "NO [CANNOT]"},
		{`RENAME INBOX "R&D"`, "NO [CANNOT]"},
		{`SELECT "Tom & Jerry"`, "NO [NONEXISTENT]"},
		{`STATUS "Tom & Jerry" (MESSAGES)`, "NO [NONEXISTENT]"},
		{`UNSUBSCRIBE "Tom & Jerry"`, "OK"},
		{`LIST "" "Tom & *"`, "BAD [CLIENTBUG]"},
		{"FETCH 0 (FLAGS)", "BAD [CLIENTBUG]"},
		// An unknown key was answered as an invalid sequence set or date.
		{"SEARCH BOGUS", "BAD [CLIENTBUG] Unknown search key, or"},
		{"UID SEARCH SINCE 32-Foo-2020", "BAD [CLIENTBUG] Unknown search key, or"},
	} {
		if _, st := r.cmd(c.cmd); !strings.HasPrefix(st, c.want) {
			t.Errorf("%s: %q, want %s", c.cmd, st, c.want)
		}
	}
	r.ok(`CREATE "Tom &- Jerry"`)
	r.want(`LIST "" "Tom*"`, `* LIST`, `"Tom &- Jerry"`)
}

// TestIMAPEmptySASLChallenge: AUTHENTICATE without an initial response
// gets an empty challenge, "+ " (RFC 9051 §6.2.2 and §9: base64, here empty), not
// "+ =", which is no base64 (RFC 4959 gives "=" to the client's empty
// initial response only).
func TestIMAPEmptySASLChallenge(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, "")
	r.send("s1 AUTHENTICATE PLAIN\r\n")
	if l := r.line(); l != "+ " && l != "+" {
		t.Fatalf("empty challenge: %q, want \"+ \"", l)
	}
	r.send(base64.StdEncoding.EncodeToString([]byte("\x00"+box+"\x00"+imapPassword)) + "\r\n")
	if _, st := r.tagged("s1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("AUTHENTICATE after the challenge: %q", st)
	}
}
