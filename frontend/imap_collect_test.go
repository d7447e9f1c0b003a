package frontend_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
	"powermail/fsm"
	"powermail/node/nodetest"
)

// ID and QUOTA commands whose arguments come as literals (RFC 9051 §4.3)
// are read whole below the library (imap_collect.go): synchronizing ones
// get "+", non-synchronizing ones are read as they come, and whatever
// follows the command is a command again.

// collectCluster starts a real node with one mailbox that has a quota
// and a message, and an IMAP server on it.
func collectCluster(t *testing.T) (addr, box string) {
	t.Helper()
	c := nodetest.Start(t, 1)
	box = "literal@example.com"
	c.AddMailboxes(imapPassword, box)
	quota := int64(10_000)
	c.Apply(&fsm.MailboxUpdate{Address: box, QuotaBytes: &quota})
	c.Deliver(0, imapTestMsg("quota", strings.Repeat("x", 3000)), box)
	return startIMAP(t, c.Nodes[0], frontend.IMAPConfig{}, true), box
}

// TestIMAPIDWithLiteral: ID with literal values, synchronizing before
// login and not after, is answered, and the session goes on.
func TestIMAPIDWithLiteral(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, "")
	name := "Prögramm"
	r.send(fmt.Sprintf("i1 ID (\"name\" {%d}\r\n", len(name)))
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("ID's synchronizing literal: %q, want +", l)
	}
	r.send(name + ")\r\n")
	want := []string{`* ID ("name" "PowerMail" "vendor" "PowerMail")`}
	if u, st := r.tagged("i1"); !strings.HasPrefix(st, "OK") || !slices.Equal(u, want) {
		t.Fatalf("ID with a synchronizing literal: %q %q", u, st)
	}
	r.ok(fmt.Sprintf("LOGIN %q %q", box, imapPassword))
	r.send("i2 ID (\"name\" {7+}\r\nq\"u\\ote \"vendor\" {1+}\r\nv)\r\ni3 SELECT INBOX\r\n")
	if u, st := r.tagged("i2"); !strings.HasPrefix(st, "OK") || !slices.Equal(u, want) {
		t.Fatalf("ID with two non-synchronizing literals: %q %q", u, st)
	}
	if _, st := r.tagged("i3"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("SELECT pipelined after it: %q", st)
	}
}

// TestIMAPQuotaWithLiteral: GETQUOTAROOT and GETQUOTA with literal
// arguments, synchronizing and not, alone and pipelined.
func TestIMAPQuotaWithLiteral(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	r.ok(`CREATE "a\"b\\c"`)
	quota := `* QUOTA "" (STORAGE 4 10)`

	// Synchronizing: the client waits for "+".
	r.send("s1 GETQUOTAROOT {5}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("after a synchronizing literal's announcement: %q, want +", l)
	}
	r.send("INBOX\r\n")
	u, st := r.tagged("s1")
	if !strings.HasPrefix(st, "OK") || !slices.Equal(u, []string{`* QUOTAROOT "INBOX" ""`, quota}) {
		t.Fatalf("GETQUOTAROOT {5} INBOX: %q %q", u, st)
	}

	// A folder name with a quote and a backslash, then one that does not
	// exist, then GETQUOTA with an empty literal, pipelined without "+".
	r.send("p1 GETQUOTAROOT {5+}\r\na\"b\\c\r\np2 GETQUOTAROOT {7+}\r\nMissing\r\np3 GETQUOTA {0+}\r\n\r\np4 NOOP\r\n")
	u, st = r.tagged("p1")
	if !strings.HasPrefix(st, "OK") || !slices.Equal(u, []string{`* QUOTAROOT "a\"b\\c" ""`, quota}) {
		t.Fatalf(`GETQUOTAROOT of a"b\c: %q %q`, u, st)
	}
	if _, st = r.tagged("p2"); !strings.HasPrefix(st, "NO [NONEXISTENT]") {
		t.Fatalf("GETQUOTAROOT of a missing folder by literal: %q", st)
	}
	if u, st = r.tagged("p3"); !strings.HasPrefix(st, "OK") || !slices.Equal(u, []string{quota}) {
		t.Fatalf("GETQUOTA {0+}: %q %q", u, st)
	}
	if _, st = r.tagged("p4"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("NOOP after them: %q", st)
	}
}

// TestIMAPLiteralRefusals: literals a QUOTA or ID command has no use for
// get BAD, and the session goes on; a command that never ends closes the
// connection.
func TestIMAPLiteralRefusals(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)

	// Too long and synchronizing: refused before the client sends it.
	r.send("b1 GETQUOTAROOT {100000}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "b1 BAD") {
		t.Fatalf("a synchronizing literal too long: %q, want BAD without +", l)
	}
	r.ok("NOOP")

	// Too long and sent regardless: read, dropped, refused.
	big := strings.Repeat("x", 20_000)
	r.send(fmt.Sprintf("b2 ID (\"name\" {%d+}\r\n%s)\r\nb3 NOOP\r\n", len(big), big))
	if _, st := r.tagged("b2"); !strings.HasPrefix(st, "BAD") {
		t.Fatalf("a non-synchronizing literal too long: %q, want BAD", st)
	}
	if _, st := r.tagged("b3"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("NOOP after it: %q", st)
	}

	// CRLF inside a literal has no quoted form; a binary literal is no
	// string.
	r.send("b4 GETQUOTAROOT {4+}\r\na\r\nb\r\nb5 GETQUOTAROOT ~{1+}\r\nx\r\nb6 NOOP\r\n")
	for _, tag := range []string{"b4", "b5"} {
		if _, st := r.tagged(tag); !strings.HasPrefix(st, "BAD") {
			t.Fatalf("%s: %q, want BAD", tag, st)
		}
	}
	if _, st := r.tagged("b6"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("NOOP after them: %q", st)
	}

	// A command that goes on past 64 KiB is cut off.
	r.send("b7 ID (\"name\" {70000+}\r\n")
	chunk := strings.Repeat("y", 10_000)
	for range 7 {
		if _, err := r.c.Write([]byte(chunk)); err != nil {
			break // closed already
		}
	}
	r.closed()
}

// tagged reads the responses up to tag's tagged one.
func (r *imapRaw) tagged(tag string) (untagged []string, status string) {
	r.t.Helper()
	for {
		l := r.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// TestIMAPLiteralLengthAtInt64Max: a synchronizing literal whose length
// is near the largest int64 is refused before the client sends it, like
// any other literal too long to keep (RFC 9051 §7.5: a tagged BAD
// instead of "+"), and the session goes on.
func TestIMAPLiteralLengthAtInt64Max(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, user)
	for i, cmd := range []string{
		"GETQUOTAROOT {9223372036854775807}",
		"GETQUOTA {9223372036854775806}",
		`ID ("name" {9223372036854775800}`,
	} {
		tag := fmt.Sprintf("h%d", i)
		r.send(tag + " " + cmd + "\r\n")
		if l := r.line(); !strings.HasPrefix(l, tag+" BAD") {
			t.Fatalf("%s: %q, want BAD without +", cmd, l)
		}
		r.ok("NOOP")
	}
}

// An APPEND whose literal the client never finishes (it hangs up part
// way) stores nothing: the message never arrived (RFC 9051 §6.3.12), and
// a client that got no OK will send it again.
func TestIMAPAppendCutOffStoresNothing(t *testing.T) {
	c := nodetest.Start(t, 1)
	box := "cutoff@example.com"
	c.AddMailboxes(imapPassword, box)
	addr := startIMAP(t, c.Nodes[0], frontend.IMAPConfig{}, true)
	r := dialIMAPRaw(t, addr, box)
	msg := imapTestMsg("cut off", strings.Repeat("x", 3000))
	r.send(fmt.Sprintf("a1 APPEND INBOX {%d}\r\n", len(msg)))
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND: %q, want +", l)
	}
	r.send(msg[:len(msg)/2])
	r.c.Close()

	check := dialIMAPRaw(t, addr, box)
	for range 20 { // the server notices the hang-up at once; give it time
		time.Sleep(50 * time.Millisecond)
		if u := check.ok("STATUS INBOX (MESSAGES)"); len(u) != 1 || u[0] != "* STATUS INBOX (MESSAGES 0)" {
			t.Fatalf("after an APPEND cut off half way: %q, want no message", u)
		}
	}
}
