package frontend_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"powermail/frontend"
)

// TestIMAPLiteralLengthWithLeadingZeros: a literal's length may have
// leading zeros (RFC 9051 §9: number = 1*DIGIT), which the library
// reads as the number they make. The wire layer looked for an
// announcement in a line's last 32 octets only, so on a continuation
// line, or after a refused command, a longer one went unseen: a refused
// command's second literal ran as commands, and an APPENDed message was
// scanned as commands (its "z ID NIL" line replaced, the literal left
// short, the client waiting). However long, such an announcement is now
// seen, in one read or split across two.
func TestIMAPLiteralLengthWithLeadingZeros(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	zeros := strings.Repeat("0", 40)
	lit := "x DELETE Archive\r\n"
	msg := "Subject: zeros\r\n\r\nz ID NIL\r\n"
	for _, c := range []struct{ name, first, second string }{
		{"a refused command's second literal", "a1 XFOO {1+}\r\nx {" + zeros,
			fmt.Sprintf("%d+}\r\n%s\r\n", len(lit), lit)},
		{"a refused long line's literal", "a1 XFOO " + strings.Repeat("y", 9000) + " {" + zeros,
			fmt.Sprintf("%d+}\r\n%s\r\n", len(lit), lit)},
		{"an APPEND message after a literal mailbox name", "a1 APPEND {5+}\r\nINBOX {" + zeros,
			fmt.Sprintf("%d+}\r\n%s\r\n", len(msg), msg)},
	} {
		for _, split := range []bool{false, true} {
			r := dialIMAPRaw(t, addr, user)
			r.cmd("CREATE Archive")
			if split {
				r.send(c.first)
				time.Sleep(100 * time.Millisecond) // a read of its own
				r.send(c.second + "a2 NOOP\r\n")
			} else {
				r.send(c.first + c.second + "a2 NOOP\r\n")
			}
			_, st := r.tagged("a1")
			if strings.Contains(c.first, "APPEND") != strings.HasPrefix(st, "OK") {
				t.Fatalf("%s (split %v): a1 %q", c.name, split, st)
			}
			if _, st := r.tagged("a2"); !strings.HasPrefix(st, "OK") {
				t.Fatalf("%s (split %v): a2 %q", c.name, split, st)
			}
			r.want(`LIST "" Archive`, "* LIST", "Archive")
			r.ok("LOGOUT")
			r.c.Close()
		}
	}
	r := dialIMAPRaw(t, addr, user)
	r.ok("SELECT INBOX")
	for _, n := range []int{1, 2} {
		u := r.ok(fmt.Sprintf("FETCH %d BODY.PEEK[]", n))
		if !strings.Contains(strings.Join(u, "\n"), "z ID NIL") {
			t.Fatalf("message %d as stored: %q", n, u)
		}
	}
}
