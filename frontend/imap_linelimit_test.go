package frontend_test

import (
	"fmt"
	"strings"
	"testing"

	"powermail/frontend"
)

// TestIMAPCommandLineOverLibraryLimit: go-imap's server reads at most
// 50 KiB of a command (literals aside) and parses what comes after that
// as a new command: the end of a long line, a quoted string's text say,
// ran as a command ("z CREATE Injected"). A command past the limit now
// ends the session with a BYE, and nothing of it runs; a command just
// within it is answered as before.
func TestIMAPCommandLineOverLibraryLimit(t *testing.T) {
	store, user := imapMemStore(t)
	addr := startIMAP(t, store, frontend.IMAPConfig{}, true)
	const limit = 50 << 10
	for _, c := range []struct {
		name string
		line string
		lit  int // literal octets in it, which the library does not count
	}{
		{"one line", "a1 XFOO %s z CREATE Injected\r\n", 0},
		{"a continuation after a literal", "a1 SEARCH SUBJECT {1+}\r\nx BODY \"%s z CREATE Injected\"\r\n", 1},
	} {
		short := len(strings.Replace(c.line, "%s", "", 1)) - c.lit
		for counted := limit - 2; counted <= limit+2; counted++ {
			r := dialIMAPRaw(t, addr, user)
			r.ok("SELECT INBOX")
			line := strings.Replace(c.line, "%s", strings.Repeat("y", counted-short), 1)
			r.send(line + "a2 NOOP\r\n")
			over := len(line)-c.lit > limit
			for {
				l := r.line()
				if strings.HasPrefix(l, "a2 ") {
					if over {
						t.Fatalf("%s, %d octets: the session went on after a command over the limit", c.name, len(line))
					}
					break
				}
				if strings.HasPrefix(l, "* BYE") {
					if !strings.Contains(l, "[TOOBIG]") {
						t.Fatalf("%s: %q, want BYE [TOOBIG]", c.name, l)
					}
					if !over {
						t.Fatalf("%s, %d octets: %q within the limit", c.name, len(line), l)
					}
					break
				}
				if !strings.HasPrefix(l, "a1 ") && !strings.HasPrefix(l, "* ") {
					t.Fatalf("%s, %d octets: %q: the line's end ran as a command", c.name, len(line), l)
				}
			}
			if over {
				r.closed()
			} else {
				r.ok("LOGOUT")
			}
			r.c.Close()
		}
	}
	r := dialIMAPRaw(t, addr, user)
	for _, l := range r.ok(`LIST "" *`) {
		if strings.Contains(l, "Injected") {
			t.Fatalf("the end of a long line ran: %q", l)
		}
	}
	// Just within the limit: a long sequence set, answered.
	r.ok("SELECT INBOX")
	set := strings.Repeat("1,", (limit-40)/2) + "1"
	cmd := fmt.Sprintf("UID FETCH %s (FLAGS)", set)
	r.ok(cmd)
}
