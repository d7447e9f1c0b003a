package frontend_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestIMAPLineEndsAsTheLibraryReadsThem: go-imap's parser ends a line at
// a lone LF as at CRLF, with one space before either allowed (its
// Decoder.CRLF). The layer below it must read the client's lines the
// same way: a literal announced by "{n}\n" is a literal, whose octets
// are never taken for commands (an "ID" line inside an APPENDed message
// was answered here and replaced by a NOOP), and ID, IDLE's "done" and
// the 4 KiB literal limit work for a client that ends its lines so.
func TestIMAPLineEndsAsTheLibraryReadsThem(t *testing.T) {
	addr, box := collectCluster(t)
	r := dialIMAPRaw(t, addr, box)
	r.ok("SELECT INBOX")

	// ID and IDLE with bare LF.
	r.send("d1 ID NIL\n")
	if u, st := r.tagged("d1"); !strings.HasPrefix(st, "OK") || len(u) != 1 || !strings.HasPrefix(u[0], "* ID ") {
		t.Fatalf("ID with a bare LF: %q %q", u, st)
	}
	r.send("d2 ID NIL \r\n")
	if _, st := r.tagged("d2"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("ID with a space before CRLF: %q", st)
	}
	r.send("i1 IDLE\n")
	r.until("+")
	r.send("done\n")
	if _, st := r.tagged("i1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IDLE ended by a lowercase done with a bare LF: %q", st)
	}

	// A message whose lines look like commands, APPENDed with bare LF:
	// stored whole, none of its lines run, with CRLF line ends
	// (crlfReader).
	msg := "Subject: lf\n\nx1 ID NIL\nx2 GETQUOTAROOT INBOX\nx3 LOGIN {5000}\n"
	r.send(fmt.Sprintf("a1 APPEND INBOX {%d}\n", len(msg)))
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("APPEND with a bare LF: %q, want +", l)
	}
	r.send(msg + "\n")
	if _, st := r.tagged("a1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND with a bare LF: %q", st)
	}
	stored := strings.ReplaceAll(msg, "\n", "\r\n")
	u := r.ok("FETCH * (RFC822.SIZE)")
	if len(u) != 1 || !strings.Contains(u[0], fmt.Sprintf("RFC822.SIZE %d", len(stored))) {
		t.Fatalf("the message APPENDed with a bare LF: %q, want RFC822.SIZE %d", u, len(stored))
	}

	// Over the library's 4 KiB: refused here, not left hanging.
	for _, end := range []string{"\n", " \r\n", " \n"} {
		r.send("t1 SEARCH TEXT {5000}" + end)
		if l := r.line(); !strings.HasPrefix(l, "t1 NO [TOOBIG]") {
			t.Fatalf("a 5000-octet literal announced with %q: %q, want NO [TOOBIG]", end, l)
		}
	}
	r.ok("NOOP")
}
